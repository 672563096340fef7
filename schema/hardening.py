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

import re
from collections.abc import Callable, Iterator

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from aidgraph.core.storage.config import Settings

PAGE_ARGUMENT = "first"
LIMIT_CODE = "QUERY_TOO_COMPLEX"


def query_cost(document, operation_name: str | None, variables: dict | None, default_page_size: int,
               stop_at: int | None = None) -> int:
    """The cost of the operation to be run: fields, multiplied by the page size of each paged ancestor.

    Works on unvalidated documents: unknown fragments count nothing, fragment cycles are cut, a ``first``
    that is not an integer counts as the default page size. ``stop_at`` ends the walk early once exceeded.
    """
    variables = variables or {}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [d for d in operations if d.name and d.name.value == operation_name]
    if len(operations) != 1:
        return 0  # strawberry reports the missing or ambiguous operation itself

    def page(field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value != PAGE_ARGUMENT:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(int(value.value), 1)
            if isinstance(value, VariableNode):
                v = variables.get(value.name.value)
                if isinstance(v, int) and not isinstance(v, bool):
                    return max(v, 1)
            return default_page_size
        return 1

    total = 0

    def walk(selection_set: SelectionSetNode | None, multiplier: int, visiting: frozenset[str]) -> None:
        nonlocal total
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if stop_at is not None and total > stop_at:
                return
            if isinstance(selection, FieldNode):
                total += multiplier
                walk(selection.selection_set, multiplier * page(selection), visiting)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, multiplier, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in fragments and name not in visiting:
                    walk(fragments[name].selection_set, multiplier, visiting | {name})

    walk(operations[0].selection_set, 1, frozenset())
    return total


class QueryCostLimiter(SchemaExtension):
    """Refuse an operation whose cost exceeds ``max_cost`` before validating or executing it."""

    def __init__(self, max_cost: int, default_page_size: int = 20):
        self.max_cost = max_cost
        self.default_page_size = default_page_size

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        # pre_execution_errors is [] when the schema's ValidationCache already found the text valid
        if ec.graphql_document is not None and not ec.pre_execution_errors:
            cost = query_cost(ec.graphql_document, ec.operation_name, ec.variables, self.default_page_size,
                              stop_at=self.max_cost)
            if cost > self.max_cost:
                # Set before validation runs: strawberry then skips validation and answers with this error.
                ec.pre_execution_errors = [GraphQLError(
                    f"query cost exceeds the limit of {self.max_cost} (each field counts once per item of every "
                    f"page above it: ask for smaller pages or fewer fields)", extensions={"code": LIMIT_CODE})]
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


def _unexpected(error: GraphQLError) -> bool:
    """Mask errors that come from an exception the code did not raise as a GraphQL error on purpose."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def hardening_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories of the extensions every schema gets, configured from ``settings`` (a fresh extension per
    request: strawberry sets the request's execution context on it)."""
    s = settings
    # The depth and alias limiters make a new validation-rule class per instance; building them once keeps
    # the rule classes stable so the schema's ValidationCache can reuse a validated operation text.
    limit_rules = [*QueryDepthLimiter(max_depth=s.max_query_depth).validation_rules,
                   *MaxAliasesLimiter(max_alias_count=s.max_query_aliases).validation_rules]
    factories: list[Callable[[], SchemaExtension]] = [
        lambda: QueryCostLimiter(s.max_query_cost, s.default_page_size),
        lambda: MaxTokensLimiter(max_token_count=s.max_query_tokens),
        lambda: AddValidationRules(limit_rules),
    ]
    if s.production:
        factories += [
            DisableIntrospection,
            lambda: MaskErrors(should_mask_error=_unexpected, error_message="Unexpected error."),
            ScrubErrors,
        ]
    return factories
