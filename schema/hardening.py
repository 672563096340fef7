"""GraphQL hardening: what a query may cost before the server spends anything on it, and what errors reveal.

Every deployment (development too) enforces, from :class:`aidgraph.core.storage.config.Settings`:
- depth (``max_query_depth``), aliases (``max_query_aliases``) and lexical tokens (``max_query_tokens``), the
  strawberry validation extensions;
- cost (``max_query_cost``): each selected field costs 1, and what is selected under a paged field counts
  once per item it may return (``first``, or the default page size), so ``first: 100`` inside ``first: 100``
  costs ten thousand times its leaves. Checked against the operation actually run, with its variables,
  before validation and execution.

Production mode (``AIDGRAPH_ENV=production``) also:
- masks unexpected errors (no stack traces, no SQL, no personal data: only errors the code raised on purpose
  as GraphQL errors keep their message);
- removes field suggestions ("Did you mean ...?") and values echoed from the request (an ID number sent in a
  variable must not come back in an error);
- turns introspection off (GraphiQL is not served: see core/server.py).

Batching is off (strawberry's default, no batching config is given), queries over GET are refused and
mutations therefore only arrive as POST with a JSON body (core/server.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document

from aidgraph.core.storage.config import Settings
from aidgraph.schema.metrics import OperationMetrics

PAGE_ARGUMENT = "first"
LIMIT_CODE = "QUERY_TOO_COMPLEX"

UNPAGED_LIST_SIZES: dict[str, int] = {"children": 84}
"""What an un-paged list field may return, by field name, for the cost limit, when nothing narrower is known.
Other un-paged lists (a household's members, enrolments, open alerts; a person's relationships) count
:data:`UNPAGED_LIST_DEFAULT` each."""

REGION_FANOUT: dict[int, int] = {2: 21, 4: 26, 6: 52, 9: 84, 12: 0}
"""``Region.children`` at its real size: the most children a division of each code width has in the shipped
NBS 2023 tree (provinces 44, 35 and 62: 21 cities in a province, 26 counties in a city, 52 townships in a
county, 84 villages in township 440605124). The level is followed from ``region(code: ...)`` down."""

NEXT_WIDTH = {2: 4, 4: 6, 6: 9, 9: 12, 12: 12}

UNPAGED_LIST_DEFAULT = 10

CONNECTION_LISTS = frozenset({"edges", "nodes"})
"""List fields of a Relay connection: as long as the page its paged field asked for."""

FIELD_WEIGHTS: dict[str, int] = {"stats": 50}
"""Fields that cost more than one row: ``Region.stats`` runs several aggregates over the whole region."""


def _cap(value: int, limit: int | None) -> int:
    return value if limit is None or value <= limit else limit + 1


class DocumentLimits:
    """Depth, aliases, repeated response names and cost of one operation, in time linear in the document.

    Every fragment is measured once (memoised), so ``fragment F1 { ...F2 ...F2 }`` nested 19 deep costs 19
    steps, not 2^19; sums saturate just above their limit. With a schema, the cost knows which fields are
    lists: a paged list (``first``) counts its page size, an un-paged list its :data:`UNPAGED_LIST_SIZES`
    (or the default page size), and heavy fields their :data:`FIELD_WEIGHTS`. Without one (the pure
    :func:`query_cost`), only ``first`` multiplies.
    """

    def __init__(self, document, operation_name: str | None, variables: dict | None, default_page_size: int,
                 schema: GraphQLSchema | None = None, limit: int | None = None, max_page: int | None = None):
        self.max_page = max_page
        self.variables = variables or {}
        self.default_page_size = default_page_size
        self.schema = schema
        self.limit = limit
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name:
            operations = [d for d in operations if d.name and d.name.value == operation_name]
        self.operation = operations[0] if len(operations) == 1 else None
        self._memo: dict[tuple[str, str], Any] = {}
        self._active: set[tuple[str, str]] = set()

    # --- the type a selection set is on (for list detection) ----------------------------------------------

    def _root(self):
        if self.schema is None or self.operation is None:
            return None
        op = self.operation.operation.value
        return {"query": self.schema.query_type, "mutation": self.schema.mutation_type,
                "subscription": self.schema.subscription_type}.get(op)

    def _field_info(self, parent, name: str):
        """(child type, is list, has a ``first`` argument) of field ``name`` on ``parent`` (None if unknown)."""
        if parent is None or not hasattr(parent, "fields"):
            return None, False, False
        field = parent.fields.get(name)
        if field is None:
            return None, False, False
        t = field.type
        is_list = False
        while isinstance(t, (GraphQLNonNull, GraphQLList)):
            is_list = is_list or isinstance(t, GraphQLList)
            t = t.of_type
        return t, is_list, PAGE_ARGUMENT in field.args

    def _fragment_type(self, fragment: FragmentDefinitionNode):
        if self.schema is None:
            return None
        return self.schema.get_type(fragment.type_condition.name.value)

    def page(self, field: FieldNode) -> int:
        """The page a ``first`` argument asks for (0: none), at most the largest page a resolver serves (a
        larger one is the resolver's VALIDATION error, clearer than a cost refusal)."""
        for argument in field.arguments or ():
            if argument.name.value != PAGE_ARGUMENT:
                continue
            value = argument.value
            asked = self.default_page_size
            if isinstance(value, IntValueNode):
                asked = max(int(value.value), 1)
            elif isinstance(value, VariableNode):
                v = self.variables.get(value.name.value)
                if isinstance(v, int) and not isinstance(v, bool):
                    asked = max(v, 1)
            return min(asked, self.max_page) if self.max_page else asked
        return 0

    def _region_width(self, field: FieldNode, width: int | None) -> int | None:
        """The code width of the regions a field returns, when the document says it."""
        name = field.name.value
        if name == "children":
            return NEXT_WIDTH.get(width) if width is not None else None
        if name == "region":
            for argument in field.arguments or ():
                if argument.name.value != "code":
                    continue
                value = argument.value
                code = getattr(value, "value", None) if not isinstance(value, VariableNode) else \
                    self.variables.get(value.name.value)
                if isinstance(code, str) and len(code) in REGION_FANOUT:
                    return len(code)
        return None

    def _multiplier(self, field: FieldNode, is_list: bool, paged: bool, width: int | None = None) -> int:
        if field.name.value == "children" and width in REGION_FANOUT:
            return REGION_FANOUT[width]
        explicit = self.page(field)
        if explicit:
            return explicit
        if paged:
            return self.default_page_size
        if is_list and field.name.value in CONNECTION_LISTS:
            return 1  # a connection's edges: the page of the field above, already counted there
        if is_list:
            return UNPAGED_LIST_SIZES.get(field.name.value, UNPAGED_LIST_DEFAULT)
        return 1

    # --- the measures, each memoised per (measure, fragment) ----------------------------------------------

    def _spread(self, measure: str, name: str, fn):
        key = (measure, name)
        if key in self._memo:
            return self._memo[key]
        if key in self._active or name not in self.fragments:
            return fn(None, None)  # a cycle (validation reports it) or an unknown fragment counts nothing
        self._active.add(key)
        fragment = self.fragments[name]
        value = fn(fragment.selection_set, self._fragment_type(fragment))
        self._active.discard(key)
        self._memo[key] = value
        return value

    def cost(self, selection_set: SelectionSetNode | None, parent=None, width: int | None = None,
             page: int | None = None) -> int:
        """``width``: the code width of the region this selection set is on, when known; ``page``: set on a
        connection's selection set, the page size its ``edges``/``nodes`` count (its totalCount, pageInfo and
        facets count once)."""
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                child, is_list, paged = self._field_info(parent, name)
                weight = FIELD_WEIGHTS.get(name, 1)
                inner = self._region_width(selection, width)
                explicit = self.page(selection)
                if (paged or explicit) and not is_list:  # a connection
                    total += weight + self.cost(selection.selection_set, child, inner,
                                                page=explicit or self.default_page_size)
                elif page is not None and name in CONNECTION_LISTS:
                    total += page * (weight + self.cost(selection.selection_set, child, inner))
                else:
                    multiplier = self._multiplier(selection, is_list, paged, width)
                    total += weight + multiplier * self.cost(selection.selection_set, child, inner)
            elif isinstance(selection, InlineFragmentNode):
                inner_type = parent
                if self.schema is not None and selection.type_condition is not None:
                    inner_type = self.schema.get_type(selection.type_condition.name.value)
                total += self.cost(selection.selection_set, inner_type, width, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(f"cost{width}:{page}", selection.name.value,
                                      lambda s, t: self.cost(s, t, width, page))
            total = _cap(total, self.limit)
        return total

    def depth(self, selection_set: SelectionSetNode | None) -> int:
        """Nesting levels of fields under ``selection_set``."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                d = 1 + self.depth(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                d = self.depth(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                d = self._spread("depth", selection.name.value, lambda s, t: self.depth(s))
            else:
                continue
            deepest = max(deepest, d)
        return deepest

    def aliases(self, selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += (1 if selection.alias is not None else 0) + self.aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += self.aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread("aliases", selection.name.value, lambda s, t: self.aliases(s))
            total = _cap(total, 10_000_000)
        return total

    def repeated(self, selection_set: SelectionSetNode | None) -> int:
        """The most times one response name occurs in one merged selection set (fragments expanded)."""
        if selection_set is None:
            return 0
        worst = 0
        counts = self._names(selection_set)
        if counts:
            worst = max(counts.values())
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                worst = max(worst, self.repeated(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                worst = max(worst, self.repeated(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                worst = max(worst, self._spread("repeated", selection.name.value, lambda s, t: self.repeated(s)))
        return worst

    def _names(self, selection_set: SelectionSetNode | None) -> dict[str, int]:
        """Response names of one selection set with fragments expanded, and how often each occurs."""
        counts: dict[str, int] = {}
        if selection_set is None:
            return counts
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                counts[key] = counts.get(key, 0) + 1
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self._names(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self._spread("names", selection.name.value, lambda s, t: self._names(s))
            else:
                continue
            for key, n in inner.items():
                counts[key] = min(counts.get(key, 0) + n, 10_000_000)
        return counts

    def root(self) -> SelectionSetNode | None:
        return self.operation.selection_set if self.operation is not None else None


def query_cost(document, operation_name: str | None, variables: dict | None, default_page_size: int,
               stop_at: int | None = None, schema: GraphQLSchema | None = None) -> int:
    """The cost of the operation to be run: fields, multiplied by the page size of each paged ancestor.

    Works on unvalidated documents: unknown fragments count nothing, fragment cycles are cut, a ``first``
    that is not an integer counts as the default page size. Linear in the document (fragments measured once);
    ``stop_at`` saturates the sum just above it. With ``schema``, un-paged lists count too (DocumentLimits).
    """
    limits = DocumentLimits(document, operation_name, variables, default_page_size, schema, stop_at)
    if limits.operation is None:
        return 0  # strawberry reports the missing or ambiguous operation itself
    return limits.cost(limits.root(), limits._root())


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": LIMIT_CODE})


def document_problems(document, operation_name: str | None, variables: dict | None, settings: Settings,
                      schema: GraphQLSchema | None = None) -> list[GraphQLError]:
    """Every limit of ``settings`` checked on the operation, each in linear time: [] when it may run."""
    s = settings
    limits = DocumentLimits(document, operation_name, variables, s.default_page_size, schema, s.max_query_cost,
                            s.max_page_size)
    if limits.operation is None:
        return []
    root = limits.root()
    name = limits.operation.name.value if limits.operation.name else "anonymous"
    problems = []
    depth = limits.depth(root) - 1
    if depth > s.max_query_depth:
        problems.append(_too_complex(f"'{name}' exceeds maximum operation depth of {s.max_query_depth}"))
    aliases = limits.aliases(root)
    if aliases > s.max_query_aliases:
        problems.append(_too_complex(f"{aliases} aliases found. Allowed: {s.max_query_aliases}"))
    repeated = limits.repeated(root)
    if repeated > s.max_repeated_fields:
        problems.append(_too_complex(f"a field is selected {repeated} times in one selection set; allowed: "
                                     f"{s.max_repeated_fields}"))
    if not problems:
        cost = limits.cost(root, limits._root())
        if cost > s.max_query_cost:
            problems.append(_too_complex(
                f"query cost exceeds the limit of {s.max_query_cost} (each field counts once per item of every "
                f"page or list above it: ask for smaller pages or fewer fields)"))
    return problems


class ByteBoundedCache:
    """A thread-safe LRU bounded in bytes (each entry charged what its caller says) and in entries."""

    def __init__(self, max_bytes: int, max_entries: int = 4096):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, size: int) -> None:
        if size > self.max_bytes // 8:  # one entry never takes more than an eighth of the budget
            return
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes or len(self._items) > self.max_entries:
                _, (_, freed) = self._items.popitem(last=False)
                self.bytes -= freed

    def __len__(self) -> int:
        return len(self._items)


AST_BYTES_PER_CHARACTER = 40
"""What a parsed operation costs in memory per character of its text (measured: a 4 KB operation's AST,
with graphql-core's nodes and locations, takes about 150 KB)."""

_caches: dict[tuple[int, int], tuple[ByteBoundedCache, ByteBoundedCache]] = {}
_caches_lock = threading.Lock()


def document_caches(settings: Settings) -> tuple[ByteBoundedCache, ByteBoundedCache]:
    """The process's parse and validation caches for this budget (shared by every request and schema)."""
    key = (settings.document_cache_bytes, settings.max_query_tokens)
    with _caches_lock:
        if key not in _caches:
            _caches[key] = (ByteBoundedCache(settings.document_cache_bytes),
                            ByteBoundedCache(max(settings.document_cache_bytes // 8, 1 << 20)))
        return _caches[key]


class BoundedDocuments(SchemaExtension):
    """Parse, check the limits, validate: parsing and validation run in a worker thread (the event loop keeps
    answering other requests), the limits (linear) before validation, and both results are cached in a
    cache bounded in bytes (:class:`ByteBoundedCache`) keyed by the operation's text."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.parsed, self.validated = document_caches(settings)

    async def on_parse(self):
        ec = self.execution_context
        text = ec.query or ""
        document = self.parsed.get(text)
        if document is None:
            try:
                document = await asyncio.to_thread(parse, text, max_tokens=self.settings.max_query_tokens,
                                                   no_location=False)
            except GraphQLError:
                document = None  # strawberry parses again and reports the syntax error itself
            if document is not None:
                self.parsed.put(text, document, len(text) * AST_BYTES_PER_CHARACTER + 256)
        if document is not None:
            ec.graphql_document = document
        yield

    async def on_validate(self):
        ec = self.execution_context
        if ec.graphql_document is not None and ec.pre_execution_errors is None:
            problems = document_problems(ec.graphql_document, ec.operation_name, ec.variables, self.settings,
                                         ec.schema._schema)
            if problems:
                ec.pre_execution_errors = problems
            else:
                key = (id(ec.schema), ec.query)
                errors = self.validated.get(key)
                if errors is None:
                    errors = await asyncio.to_thread(validate_document, ec.schema._schema, ec.graphql_document,
                                                     tuple(ec.validation_rules))
                    self.validated.put(key, list(errors), len(ec.query or "") + 64 +
                                       sum(len(e.message) for e in errors))
                ec.pre_execution_errors = list(errors)
        yield


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_ECHOED_VALUE = re.compile(r"got invalid value .*?(;|$)", re.S)
_FOUND_VALUE = re.compile(r"(found|got|value)\s+[\"'{\[].*?(?=[;.]\s|$)", re.S)
_PERSONAL = re.compile(r"\d{17}[\dXx]|\d{15}|\b1\d{10}\b|\d{3,4}\*+\d{4}")


def scrub_message(message: str) -> str:
    """An error message without suggestions, echoed request values or anything like an ID or phone number."""
    message = _SUGGESTION.sub("", message)
    message = _ECHOED_VALUE.sub(lambda m: "got an invalid value" + m.group(1), message)
    message = _FOUND_VALUE.sub(lambda m: m.group(1) + " an invalid value", message)
    return _PERSONAL.sub("[redacted]", message)


class ScrubErrors(SchemaExtension):
    """Production: strip suggestions and echoed values from every error message, validation ones included."""

    def on_operation(self) -> Iterator[None]:
        yield
        ec = self.execution_context
        for errors in (ec.pre_execution_errors, getattr(ec.result, "errors", None)):
            for error in errors or ():
                if isinstance(error, GraphQLError):
                    error.message = scrub_message(error.message)


CLIENT_ERROR_CODES = {
    "syntax": "GRAPHQL_PARSE_FAILED",
    "validation": "GRAPHQL_VALIDATION_FAILED",
    "input": "BAD_USER_INPUT",
    "internal": "INTERNAL_SERVER_ERROR",
}
_DATABASE_ERRORS: tuple[type[BaseException], ...] = ()
try:  # the storage layer's errors: their text carries SQL and parameters
    from sqlalchemy.exc import SQLAlchemyError as _SQLAlchemyError

    _DATABASE_ERRORS = (_SQLAlchemyError, OverflowError)
except ImportError:  # pragma: no cover
    pass


def classify_error(error: GraphQLError) -> str:
    """The code of an error that has none: a syntax or validation error of the document, an input the code
    refused (ValueError), or an internal failure."""
    original = error.original_error
    if original is None:
        return CLIENT_ERROR_CODES["syntax"] if error.message.startswith("Syntax Error") else \
            CLIENT_ERROR_CODES["validation"]
    if isinstance(original, (ValueError, TypeError)) and not isinstance(original, _DATABASE_ERRORS):
        return CLIENT_ERROR_CODES["input"]
    return CLIENT_ERROR_CODES["internal"]


class ClientErrors(SchemaExtension):
    """Every error answered carries a code (``extensions.code``); a database failure is answered as an
    internal error without its text (SQL, parameters), in every mode. Logging is one line per error
    (:class:`OneLineErrors`)."""

    def on_operation(self) -> Iterator[None]:
        yield
        ec = self.execution_context
        for errors in (ec.pre_execution_errors, getattr(ec.result, "errors", None)):
            for error in errors or ():
                if not isinstance(error, GraphQLError):
                    continue
                extensions = dict(error.extensions or {})
                if isinstance(error.original_error, _DATABASE_ERRORS):
                    error.message = "Unexpected error."
                    extensions["code"] = CLIENT_ERROR_CODES["internal"]
                extensions.setdefault("code", classify_error(error))
                error.extensions = extensions


class OneLineErrors(logging.Filter):
    """strawberry logs each error with its traceback; a client's mistake is one line (code, first line of the
    message, path), and a database error's text is not logged either (only its type)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.msg if isinstance(record.msg, GraphQLError) else None
        if error is not None:
            code = (error.extensions or {}).get("code") or classify_error(error)
            original = error.original_error
            first = error.message.splitlines()[0] if error.message else ""
            if isinstance(original, _DATABASE_ERRORS):
                first = f"database error {type(original).__name__}"
            path = ".".join(str(p) for p in error.path or ())
            record.msg = f"graphql error code={code} path={path or '-'} message={first[:300]!r}"
        else:
            record.msg = str(record.getMessage()).splitlines()[0] if record.getMessage() else ""
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


_ONE_LINE = OneLineErrors()
if not any(isinstance(f, OneLineErrors) for f in logging.getLogger("strawberry.execution").filters):
    logging.getLogger("strawberry.execution").addFilter(_ONE_LINE)


def _unexpected(error: GraphQLError) -> bool:
    """Mask errors that come from an exception the code did not raise as a GraphQL error on purpose."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def hardening_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories of the extensions every schema gets, configured from ``settings`` (a fresh extension per
    request: strawberry sets the request's execution context on it). Parsing and validation caches are part
    of :class:`BoundedDocuments`: do not add strawberry's ParserCache/ValidationCache (their validation runs
    before the limits and is bounded in entries only)."""
    s = settings
    factories: list[Callable[[], SchemaExtension]] = [
        OperationMetrics,  # first: it sees the codes ClientErrors gives (hooks after yield run in reverse)
        ClientErrors,
        lambda: MaxTokensLimiter(max_token_count=s.max_query_tokens),
        lambda: BoundedDocuments(s),
    ]
    if s.production:
        factories += [
            DisableIntrospection,
            lambda: MaskErrors(should_mask_error=_unexpected, error_message="Unexpected error."),
            ScrubErrors,
        ]
    return factories
