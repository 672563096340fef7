"""The retention periods as province parameters (``retention.toml``): declared for the core's default plugin,
read into the plain numbers :mod:`aidgraph.core.graph.retention` applies.

``retention.<class>_months`` (how long a record stays live after it ended) for every record class, and
``retention.<class>_hold_months`` (a statutory storage period after that: stored only, then deleted) for the
classes that may have one. No source of this project gives these periods except the audit log's legal minimum
(网络安全法 第二十一条, six months), which is the ``minimum`` of its parameter: a province configuring less
fails to load, naming the file and the key. Every other value is configured by the province (illustrative in
the shipped configurations).
"""

from __future__ import annotations

import datetime as dt

from aidgraph.core.graph.retention import RECORD_CLASSES, Periods
from aidgraph.core.policy.parameters import ParamSpec


def parameter_schemas() -> list[ParamSpec]:
    specs = []
    for c in RECORD_CLASSES:
        legal = (f"; legal minimum {c.legal_minimum_months} months (网络安全法 第二十一条)"
                 if c.legal_minimum_months else "")
        specs.append(ParamSpec(f"retention.{c.key}_months", "integer",
                               f"保存期限: months {c.description} stay live after they ended{legal}",
                               unit="months", minimum=c.legal_minimum_months or 1))
        if c.hold:
            specs.append(ParamSpec(f"retention.{c.key}_hold_months", "integer",
                                   f"法定保存期限: months after they ended that {c.description} must still be "
                                   f"stored (storage only); 0: none", unit="months", minimum=0))
    return specs


def periods(params, on: dt.date) -> Periods:
    """The periods of one province (its :class:`ProvinceParams`) in force on ``on``."""
    keep = {c.key: int(params.value(f"retention.{c.key}_months", on)) for c in RECORD_CLASSES}
    hold: dict[str, int | None] = {}
    for c in RECORD_CLASSES:
        if c.hold:
            months = int(params.value(f"retention.{c.key}_hold_months", on))
            hold[c.key] = months if months > keep[c.key] else None
    return Periods(params.province_code, keep, hold)
