"""The search index layout: one index for every kind of record, owned by the core, extended by plugins.

Persons (人员), households (家庭), enrolments (救助申请/案件) and alerts (预警) share one index behind an alias
so that one query ranks, pages and facets across kinds (the contract's Search operation). Every document has
``kind``, ``entity_id``, ``uid`` (``KIND:id``, the unique sort tie-breaker for ``search_after`` paging) and
``region_code`` with its ancestors at each level (``region_province`` .. ``region_township``): the scope filter is a
``terms`` clause on the field of each scope prefix's level, and the region facet groups by one of them. (A
``prefix`` query on ``region_code`` means the same, but the embedded engine evaluates it against every document:
0.3 s a search at 20,000 households, against 0.04 s for the level field.)

Chinese names and addresses use an n-gram tokenizer of 1 and 2 characters: a surname alone (``张``) or any
part of a given name (``三丰``) finds the record, which the word-level ``cjk`` bigram analyzer cannot do for a
single character and which needs no dictionary (``smartcn``/``ik`` are plugins a cluster may not have). Both
OpenSearch and the bundled osmem-server run the ``ngram`` tokenizer. A gram span of 1 keeps within
OpenSearch's default ``index.max_ngram_diff``. Household numbers are exact keywords and ID numbers are stored
only as their keyed blind index (``id_number_index``, HMAC; never the number, masked or not): the full number
finds the record; a fragment of it does not (that would be a lookup by partial ID).

Plugins add fields with the ``aidgraph_search_fields`` hook. Fields a plugin adds are treated as sensitive
(health, disability, income are what plugins index): they are matched and filtered like any other, but never
returned from the index to a caller without ``read_sensitive`` (see :mod:`aidgraph.core.search.query`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from aidgraph.core.storage.models import OutboxEntity

KINDS: tuple[str, ...] = tuple(e.value for e in OutboxEntity)
"""Kinds of searchable records (the contract's ``SearchKind``): PERSON, HOUSEHOLD, ENROLLMENT, ALERT."""

DEFAULT_ALIAS = "aidgraph"
"""The alias searches and the indexer write through; each rebuild is a new concrete index behind it."""

NGRAM_ANALYZER = "cjk_ngram"

INDEX_SETTINGS: dict[str, Any] = {
    "index": {"number_of_shards": 1, "number_of_replicas": 0},
    "analysis": {
        "tokenizer": {
            "cjk_ngram_tokenizer": {"type": "ngram", "min_gram": 1, "max_gram": 2,
                                    "token_chars": ["letter", "digit"]},
        },
        "analyzer": {
            NGRAM_ANALYZER: {"type": "custom", "tokenizer": "cjk_ngram_tokenizer", "filter": ["lowercase"]},
        },
    },
}

_KEYWORD = {"type": "keyword"}
_NGRAM_TEXT = {"type": "text", "analyzer": NGRAM_ANALYZER}

CORE_PROPERTIES: dict[str, dict] = {
    "kind": _KEYWORD,
    "entity_id": {"type": "long"},
    "uid": _KEYWORD,
    "region_code": _KEYWORD,
    "region_province": _KEYWORD,
    "region_city": _KEYWORD,
    "region_county": _KEYWORD,
    "region_township": _KEYWORD,
    "name": _NGRAM_TEXT,
    "address": _NGRAM_TEXT,
    "id_number_index": _KEYWORD,
    "household_number": _KEYWORD,
    "household_id": {"type": "long"},
    "warning_level": _KEYWORD,
    "status": _KEYWORD,
    "program_key": _KEYWORD,
    "indicators": _KEYWORD,
    "month": _KEYWORD,
    "sex": _KEYWORD,
    "birth_year": {"type": "integer"},
}

REGION_LEVEL_FIELDS: dict[int, str] = {2: "region_province", 4: "region_city", 6: "region_county",
                                       9: "region_township", 12: "region_code"}
"""Code width -> the document field holding the record's ancestor at that level (scope filter, region facet)."""

CORE_SENSITIVE: frozenset[str] = frozenset()
"""Core fields returned from the index only to callers who may read them in full: none. The index holds no ID
number (身份证号码), only its blind index ``id_number_index`` for exact search (aidgraph.core.storage.encrypted),
which is never returned; a caller who may read the number gets it from the database, through the privacy layer."""

SOURCE_FIELDS: tuple[str, ...] = ("kind", "entity_id", "uid", "region_code", "name", "household_number",
                                  "warning_level", "status", "program_key")
"""Non-sensitive fields every caller gets back from the index (the node itself is loaded from the database)."""

HIGHLIGHT_FIELDS: tuple[str, ...] = ("name", "address", "household_number")


class SearchMappingError(ValueError):
    """Plugins declared search fields that cannot live in the one index (names the field and the plugins)."""


@dataclass(frozen=True)
class SearchLayout:
    """The index's mapping: core fields plus every plugin field, and which of them are sensitive."""

    properties: dict[str, dict]
    plugin_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """kind -> plugin field names, for the document builders."""
    sensitive: frozenset[str] = CORE_SENSITIVE
    text_fields: tuple[str, ...] = ("name", "address")
    """Analysed text fields the free-text query matches (plugin ``text`` fields are added)."""
    pm: Any = None

    def index_body(self) -> dict:
        return {"settings": copy.deepcopy(INDEX_SETTINGS),
                "mappings": {"dynamic": "strict", "properties": copy.deepcopy(self.properties)}}


def build_layout(pm: Any = None) -> SearchLayout:
    """The layout for a deployment: the core's fields and those plugins add through ``aidgraph_search_fields``.

    ``pm`` is the plugin manager (``None``: core fields only). A field the core owns, or one that two plugins
    declare with different mappings, is an error naming the field.
    """
    properties = copy.deepcopy(CORE_PROPERTIES)
    plugin_fields: dict[str, list[str]] = {k: [] for k in KINDS}
    owners: dict[str, str] = {}
    text_fields = ["name", "address"]
    hook = getattr(getattr(pm, "hook", None), "aidgraph_search_fields", None)
    contributions = hook() if hook is not None else []
    for contribution in contributions or []:
        for kind_name, fields in (contribution or {}).items():
            kind = kind_name.upper()
            if kind not in KINDS:
                raise SearchMappingError(f"search field kind {kind_name!r} is not one of {', '.join(KINDS)}")
            for name, mapping in fields.items():
                if name in CORE_PROPERTIES:
                    raise SearchMappingError(f"search field {name!r} is owned by the core; a plugin cannot redefine it")
                if name in properties and properties[name] != mapping:
                    raise SearchMappingError(
                        f"search field {name!r} is declared with two mappings: {properties[name]} ({owners[name]}) "
                        f"and {mapping} ({kind})")
                properties[name] = dict(mapping)
                owners.setdefault(name, kind)
                if name not in plugin_fields[kind]:
                    plugin_fields[kind].append(name)
                if mapping.get("type") == "text" and name not in text_fields:
                    text_fields.append(name)
    extra = frozenset(n for names in plugin_fields.values() for n in names)
    return SearchLayout(properties=properties, plugin_fields={k: tuple(v) for k, v in plugin_fields.items()},
                        sensitive=CORE_SENSITIVE | extra, text_fields=tuple(text_fields), pm=pm)


def doc_id(kind: str, entity_id: int) -> str:
    return f"{kind}:{entity_id}"


def region_levels(code: str | None) -> dict[str, str]:
    """The ancestor codes of ``code`` at province, city, county and township level (scope filter, region facet)."""
    if not code:
        return {}
    return {fieldname: code[:width] for width, fieldname in REGION_LEVEL_FIELDS.items()
            if width < 12 and len(code) >= width}
