"""防止返贫监测: the program for persons monitored against relapse into poverty, and the monitoring indicators.

Contributes every monitoring indicator of :mod:`.indicators` (the engine is :mod:`aidgraph.core.monitoring.cycle`), declares
the province parameters they read (``monitoring.weights.<key>``, ``monitoring.bands``,
``monitoring.thresholds.*``; files ``province_configs/<code>/parameters/monitoring.toml``) and checks the bands
of a province as a whole when it is loaded.
"""

from __future__ import annotations


from .indicators import INDICATORS
from aidgraph.plugin import (
    BANDS_KEY,
    Bands,
    MonitoringError,
    ParamSpec,
    Program,
    hookimpl,
)
from .rules import RULES

PLUGIN_NAME = "relapse_monitoring"
__version__ = "0.1.0"


@hookimpl
def aidgraph_monitoring_indicators():
    return list(INDICATORS)


@hookimpl
def aidgraph_parameter_schemas():
    specs = [
        ParamSpec(ind.weight_key, "number", f"{ind.name} {ind.key} indicator weight", unit="points", minimum=0,
                  area="monitoring")
        for ind in INDICATORS
    ]
    specs += [
        # Optional so that a province without bands loads; the monitoring run then says exactly what is missing.
        ParamSpec(BANDS_KEY, "table", "warning bands: warning level = lowest household score", unit="points",
                  required=False, area="monitoring"),
        ParamSpec("monitoring.thresholds.baseline_months", "integer",
                  "months before the scored month averaged as the income/expenditure baseline", unit="months",
                  minimum=1, maximum=12, area="monitoring"),
        ParamSpec("monitoring.thresholds.income_drop_ratio", "number",
                  "收入骤减 share of the baseline income lost that counts as a sudden drop", unit="ratio",
                  minimum=0, maximum=1, area="monitoring"),
        ParamSpec("monitoring.thresholds.expenditure_surge_ratio", "number",
                  "支出骤增 rise over the baseline expenditure that counts as a surge", unit="ratio", minimum=0,
                  area="monitoring"),
        ParamSpec("monitoring.thresholds.expenditure_surge_min_amount", "number",
                  "支出骤增 smallest rise in yuan that counts as a surge", unit="yuan", minimum=0, area="monitoring"),
        ParamSpec("monitoring.relapse.income_line", "number",
                  "边缘易致贫 per-capita monthly income below which a household appears eligible for monitoring",
                  unit="yuan per person per month", minimum=0, area="monitoring"),
        ParamSpec("monitoring.relapse.expenditure_share", "number",
                  "突发严重困难 rigid expenditure above this share of household income", unit="ratio", minimum=0,
                  area="monitoring"),
    ]
    return specs


@hookimpl
def aidgraph_province_validate(params):
    problems = []
    parameter = params.parameters.get(BANDS_KEY)
    for dated in parameter.values if parameter else []:
        try:
            Bands.from_value(dated.value, f"from {dated.start.isoformat()}")
        except MonitoringError as exc:
            problems.append(f"{BANDS_KEY}: {exc}")
    return problems or None


# --- the program (防止返贫监测对象) ------------------------------------------------------------------------


PROGRAM = Program(
    key="relapse_monitoring", name="防止返贫监测", domain="monitoring", unit="household",
    category="RELAPSE_MONITORING", reviewed=True,
    description="persons monitored against relapse into poverty (边缘易致贫户、脱贫不稳定户、突发严重困难户), "
                "GD-2024, GS-2024: monitored and helped, no monthly cash amount of their own",
)


@hookimpl
def aidgraph_programs():
    return [PROGRAM]


@hookimpl
def aidgraph_eligibility_rules():
    return list(RULES)
