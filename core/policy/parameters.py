"""Dated policy parameters of a province (OpenFisca-style), loaded from province_configs/ and validated strictly.

A province folder holds ``province.toml`` (code, name, the plugins it enables) and ``parameters/<area>.toml``
files in which every parameter is a table keyed by its dotted name::

    ["dibao.urban_standard"]
    description = "城市低保标准 urban dibao standard"
    unit = "yuan per person per month"
    source = "illustrative"            # or a source key such as "GD-2021", with where in it
    values = [ { from = 2024-01-01, value = 1200 },
               { from = 2024-01-01, value = 1300, region = "4401" } ]

Every value has the date it takes effect: a change on a date is a new entry, never an edit. A value may be
limited to a region-code prefix (``region``): the standard differs by city in reality, and the most specific
region in force wins. Values are numbers, strings, booleans, lists or tables (bands, ratios by category).

Plugins declare the parameters they read (:class:`ParamSpec`, through the ``aidgraph_parameter_schemas``
hook). Loading checks every file against the schemas of the plugins the province enables: an unknown key, a
missing value, a value without an effective date or of the wrong type is a :class:`ParameterError` naming
the file and the key. A value that no source document gives is marked ``source = "illustrative ..."``: the
platform reports which parameters are illustrative (``aidgraph plugins``) so nobody mistakes a demo number
for policy.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from aidgraph.core.access.scope import is_level_code
from aidgraph.core.policy.sources import is_illustrative, source_problem


PARAM_TYPES = ("number", "integer", "string", "boolean", "list", "table")
_ENTRY_FIELDS = {"description", "unit", "source", "values", "note"}
_VALUE_FIELDS = {"from", "value", "region", "source", "note"}


class ParameterError(ValueError):
    """A province configuration problem, naming the file and the key (or plugin) concerned."""

    def __init__(self, file: Path | str, key: str | None, message: str):
        self.file = str(file)
        self.key = key
        self.message = message
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + message)


class ParameterMissing(LookupError):
    """A parameter has no value in force on the date asked (or is not configured at all)."""

    def __init__(self, province_code: str, key: str, on: dt.date | None):
        self.key = key
        when = f" on {on.isoformat()}" if on else ""
        super().__init__(f"province {province_code}: parameter {key} has no value{when}")


@dataclass(frozen=True)
class ParamSpec:
    """What a plugin declares about a parameter it reads.

    ``regional``: values may carry a ``region`` prefix (standards that differ by city or county).
    ``required``: loading fails when no file of the province gives it. ``minimum``/``maximum`` bound numbers
    (for example Fujian's earned-income deduction rate, 20%-30% in FJ-2021); ``choices`` limits strings and
    the items of string lists. ``area`` is the file stem expected to hold it (default: the key's prefix).
    """

    key: str
    type: str
    description: str
    unit: str = ""
    required: bool = True
    regional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    area: str | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.key}: type must be one of {', '.join(PARAM_TYPES)}, not {self.type!r}")

    @property
    def file_area(self) -> str:
        return self.area or self.key.split(".", 1)[0]


@dataclass(frozen=True)
class DatedValue:
    start: dt.date
    value: Any
    region: str | None = None
    source: str | None = None


@dataclass
class Parameter:
    key: str
    description: str
    unit: str
    source: str
    file: Path
    values: list[DatedValue]

    def in_force(self, on: dt.date, region: str | None = None) -> DatedValue | None:
        """The value in force on ``on`` for ``region``: the most specific region prefix, then the latest date."""
        best: DatedValue | None = None
        for v in self.values:
            if v.start > on:
                continue
            if v.region is not None and (region is None or not region.startswith(v.region)):
                continue
            if best is None or (len(v.region or ""), v.start) > (len(best.region or ""), best.start):
                best = v
        return best

    def is_illustrative(self, on: dt.date | None = None) -> bool:
        sources = [self.source] + [v.source for v in self.values
                                   if v.source and (on is None or v.start <= on)]
        return any(_illustrative(s) for s in sources)


def _illustrative(source: str | None) -> bool:
    return source is not None and is_illustrative(source)


class ProvinceParams:
    """The validated parameters of one province; read with :meth:`value` (one) or :meth:`column` (per row)."""

    def __init__(self, province_code: str, parameters: dict[str, Parameter], specs: dict[str, ParamSpec]):
        self.province_code = province_code
        self.parameters = parameters
        self.specs = specs

    def has(self, key: str, on: dt.date | None = None) -> bool:
        p = self.parameters.get(key)
        if p is None:
            return False
        return on is None or p.in_force(on) is not None or any(v.start <= on for v in p.values)

    def value(self, key: str, on: dt.date, region: str | None = None, default: Any = ...) -> Any:
        """The value of ``key`` in force on ``on`` (for ``region``, a region code, when the parameter varies)."""
        p = self.parameters.get(key)
        found = p.in_force(on, region) if p is not None else None
        if found is None:
            if default is not ...:
                return default
            raise ParameterMissing(self.province_code, key, on)
        return found.value

    def column(self, key: str, on: dt.date, region_column: str = "region_code", default: Any = None) -> pl.Expr:
        """The value in force on ``on`` for every row, by the row's region code (set-at-a-time lookup).

        One ``when/then`` per region override (a handful per province), applied shortest prefix first so that
        the most specific region wins, exactly as :meth:`Parameter.in_force` decides for one row.
        """
        values = self.by_region(key, on)
        expr = pl.lit(values.pop(None, default))
        for region in sorted((r for r in values if r is not None), key=len):
            expr = pl.when(pl.col(region_column).str.starts_with(region)).then(pl.lit(values[region])).otherwise(expr)
        return expr

    def by_region(self, key: str, on: dt.date) -> dict[str | None, Any]:
        """The latest value in force on ``on`` per region prefix (None: the province-wide one), the choices that
        :meth:`Parameter.in_force` makes for one region code; empty when ``key`` has no value."""
        p = self.parameters.get(key)
        latest: dict[str | None, DatedValue] = {}
        for v in p.values if p is not None else []:
            if v.start <= on and (v.region not in latest or v.start > latest[v.region].start):
                latest[v.region] = v
        return {region: v.value for region, v in latest.items()}

    def source(self, key: str) -> str | None:
        p = self.parameters.get(key)
        return p.source if p else None

    def is_illustrative(self, key: str, on: dt.date | None = None) -> bool:
        p = self.parameters.get(key)
        return p is not None and p.is_illustrative(on)

    def illustrative_keys(self) -> list[str]:
        return sorted(k for k, p in self.parameters.items() if p.is_illustrative())

    def cite(self, key: str) -> str:
        """``key`` with its source, for reasons: ``dibao.urban_standard [illustrative]``."""
        p = self.parameters.get(key)
        if p is None:
            return f"{key} [not configured]"
        return f"{key} [{'illustrative' if p.is_illustrative() else p.source}]"

    def keys(self) -> list[str]:
        return sorted(self.parameters)


@dataclass
class ProvinceConfig:
    """A province as configured: its code and name, the plugins it enables, its validated parameters."""

    code: str
    name: str
    enabled: list[str]
    params: ProvinceParams
    directory: Path
    files: list[Path] = field(default_factory=list)
    inactive_keys: list[str] = field(default_factory=list)
    """Keys of installed plugins this province does not enable: present in files, not loaded."""


# --- loading -----------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ParameterError(path, None, "file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ParameterError(path, None, f"not valid TOML: {e}") from None


def _type_ok(spec: ParamSpec, value: Any) -> str | None:
    """None when ``value`` fits ``spec``, else what is wrong."""
    t = spec.type
    if t == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {type(value).__name__} {value!r}"
    elif t == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {type(value).__name__} {value!r}"
    elif t == "string":
        if not isinstance(value, str):
            return f"expected a string, got {type(value).__name__} {value!r}"
    elif t == "boolean":
        if not isinstance(value, bool):
            return f"expected true or false, got {type(value).__name__} {value!r}"
    elif t == "list":
        if not isinstance(value, list):
            return f"expected a list, got {type(value).__name__} {value!r}"
    elif t == "table":
        if not isinstance(value, dict):
            return f"expected a table, got {type(value).__name__} {value!r}"
    if t in ("number", "integer"):
        if spec.minimum is not None and value < spec.minimum:
            return f"{value!r} is below the minimum {spec.minimum:g}"
        if spec.maximum is not None and value > spec.maximum:
            return f"{value!r} is above the maximum {spec.maximum:g}"
    if spec.choices is not None:
        items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        bad = [i for i in items if i not in spec.choices]
        if bad:
            return f"{', '.join(map(repr, bad))} not among {', '.join(spec.choices)}"
    return None


def parse_parameter_file(path: Path, province_code: str, specs: dict[str, ParamSpec],
                         inactive: set[str] | None = None) -> dict[str, Parameter]:
    """Parse and check one ``parameters/<area>.toml`` file against ``specs``.

    Keys in ``inactive`` belong to installed plugins the province does not enable: they are skipped, so a
    plugin is switched off by one line of province.toml without deleting its parameters.
    """
    data = _read_toml(path)
    found: dict[str, Parameter] = {}
    for key, entry in data.items():
        if inactive and key in inactive:
            continue
        spec = specs.get(key)
        if spec is None:
            hint = " (write the key quoted: [\"a.b\"])" if isinstance(entry, dict) and "values" not in entry else ""
            raise ParameterError(path, key, f"unknown key: no plugin enabled for province {province_code} "
                                            f"declares it{hint}")
        if not isinstance(entry, dict):
            raise ParameterError(path, key, "must be a table with description, source and values")
        extra = set(entry) - _ENTRY_FIELDS
        if extra:
            raise ParameterError(path, key, f"unknown field(s) {', '.join(sorted(extra))}")
        for required in ("description", "source"):
            if not isinstance(entry.get(required), str) or not entry[required].strip():
                raise ParameterError(path, key, f"missing {required} (a source key such as GD-2021, or "
                                                f"'illustrative')" if required == "source" else f"missing {required}")
        problem = source_problem(entry["source"])
        if problem:
            raise ParameterError(path, key, problem)
        values = entry.get("values")
        if not isinstance(values, list) or not values:
            raise ParameterError(path, key, "missing value: 'values' must be a non-empty list of "
                                            "{ from = YYYY-MM-DD, value = ... }")
        dated: list[DatedValue] = []
        seen: set[tuple[dt.date, str | None]] = set()
        for i, item in enumerate(values, start=1):
            where = f"values[{i}]"
            if not isinstance(item, dict):
                raise ParameterError(path, key, f"{where} must be a table {{ from = ..., value = ... }}")
            extra = set(item) - _VALUE_FIELDS
            if extra:
                raise ParameterError(path, key, f"{where}: unknown field(s) {', '.join(sorted(extra))}")
            start = item.get("from")
            if start is None:
                raise ParameterError(path, key, f"{where}: missing 'from' date (the date the value takes effect)")
            if isinstance(start, dt.datetime) or not isinstance(start, dt.date):
                raise ParameterError(path, key, f"{where}: 'from' must be a date (YYYY-MM-DD), got {start!r}")
            if "value" not in item:
                raise ParameterError(path, key, f"{where}: missing value")
            problem = _type_ok(spec, item["value"])
            if problem:
                raise ParameterError(path, key, f"{where}: bad type: {problem}")
            region = item.get("region")
            if region is not None:
                if not spec.regional:
                    raise ParameterError(path, key, f"{where}: this parameter does not vary by region")
                if not isinstance(region, str) or not is_level_code(region) or not region.startswith(province_code):
                    raise ParameterError(path, key, f"{where}: region {region!r} is not a region code of province "
                                                    f"{province_code}")
            if (start, region) in seen:
                raise ParameterError(path, key, f"{where}: a second value from {start} "
                                                f"{'for ' + region if region else ''}: add a new date instead")
            seen.add((start, region))
            src = item.get("source")
            if src is not None and (not isinstance(src, str) or not src.strip()):
                raise ParameterError(path, key, f"{where}: source must be a non-empty string")
            problem = source_problem(src) if src is not None else None
            if problem:
                raise ParameterError(path, key, f"{where}: {problem}")
            dated.append(DatedValue(start, item["value"], region, src))
        dated.sort(key=lambda v: (v.start, v.region or ""))
        found[key] = Parameter(key, entry["description"], entry.get("unit", ""), entry["source"], path, dated)
    return found
