"""The one place that says what a plugin can contribute to aidgraph: every hook, typed and documented.

Aid-domain plugins (低保, 特困, 医疗救助, ...), province plugins (广东, 福建, 甘肃) and third-party distributions
(entry-point group ``aidgraph``) implement these hooks with ``from aidgraph.core.policy.hookspecs import hookimpl``. The core
never imports a plugin: it calls these hooks through the plugin manager built by
:func:`aidgraph.core.policy.host.build_plugin_manager`.

How results combine:

* Hooks without ``firstresult`` return a list of every plugin's non-``None`` answer; list-returning hooks are
  flattened by the caller (for example every plugin's programs together).
* ``firstresult`` hooks return the first non-``None`` answer (``T | None``): province plugins override a
  domain default by being called earlier (``tryfirst=True``); defaults meant to be overridden are ``trylast``.
* Hooks about policy (programs, eligibility, benefits, parameters, income deductions, lifecycle) are called
  through :class:`aidgraph.core.policy.host.ProvincePlugins`, a province-scoped caller that only reaches the plugins
  the province enables, so one province's rules never apply to another. Hooks about the deployment as a
  whole (GraphQL, search, Casbin objects) are called on the full plugin manager.

Call hooks with keyword arguments only (pluggy's rule).
"""

from __future__ import annotations

from typing import Any

import pluggy

from aidgraph.core.policy.contract import (
    BenefitFormula,
    EligibilityRule,
    EnrollmentEvent,
    GraphQLContribution,
    IncomeDeduction,
    Indicator,
    Program,
)
from aidgraph.core.policy.parameters import ParamSpec, ProvinceParams

PROJECT_NAME = "aidgraph"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- programs and policy (province-scoped) --------------------------------------------------------------


@hookspec
def aidgraph_programs() -> list[Program]:
    """Register aid programs (救助项目): key, name, aid domain, unit, state machine and review cycle.

    Every plugin's list is concatenated. A program key registered twice is a start-up error naming both
    plugins. Program keys are stable identifiers stored in ``enrollment.program_key`` (``dibao``, ``tekun``,
    ``dibao_edge``, ``expenditure_hardship``, ``medical``, ...).
    """


@hookspec
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    """Declare the dated parameters a plugin reads (key, type, unit, bounds, whether required).

    Province parameter files are validated against the union of the schemas of the plugins the province
    enables: a key no enabled plugin declares is an error naming the file and the key.
    """


@hookspec
def aidgraph_eligibility_rules() -> list[EligibilityRule]:
    """Contribute eligibility criteria for programs, evaluated set-at-a-time over a polars frame.

    Every criterion gives a boolean polars expression and a reason expression naming the numbers used, over
    the household frame of :func:`aidgraph.core.policy.engine.household_frame` (one row per household; one household is
    a one-row frame, the same code path). A rule with ``replaces="<rule key>"`` removes the rule of that key
    for the same program: this is how a province plugin changes a domain rule for its province only.
    """


@hookspec(firstresult=True)
def aidgraph_benefit_formula(program: Program, params: ProvinceParams) -> BenefitFormula | None:
    """The formula of the monthly benefit of ``program`` for a province (first answer wins).

    Domain plugins answer with ``trylast=True`` defaults; a province plugin answering first (``tryfirst``)
    replaces the formula for its province. ``None`` from everyone means the program pays no monthly amount.
    """


@hookspec
def aidgraph_income_deductions(params: ProvinceParams) -> list[IncomeDeduction]:
    """Province rules that adjust assessed household income before the income tests.

    Example: the necessary employment costs deducted in Guangdong (GD-2021) or 20-30% of earned income in
    Fujian (FJ-2021). Every deduction is a polars expression of a monthly household amount; the engine
    subtracts their sum (never below zero) and names each one in the reasons.
    """


@hookspec
def aidgraph_enrollment_changed(event: EnrollmentEvent) -> None:
    """Lifecycle notification: an enrolment moved from one status to another.

    Called inside the transaction of the change, after the step, audit, aid-chain and outbox rows are added
    (``event.session`` is that AsyncSession). An implementation may add rows to the same session (a referral,
    a notification record); raising aborts the whole change. Never commit. An implementation may be a
    coroutine function: the workflow awaits every awaitable answer in call order.
    """


@hookspec
def aidgraph_province_validate(params: ProvinceParams) -> list[str] | None:
    """Check a province's parameters as a whole after the per-key schema checks (cross-key rules).

    Return problems as ``"<key>: <message>"`` strings; the loader raises one ParameterError naming the
    province folder and every problem. Example: the tekun standard multiplier must be at least 1.6 (GD-2021).
    """


# --- the deployment as a whole -----------------------------------------------------------------------------


@hookspec
def aidgraph_monitoring_indicators() -> list[Indicator]:
    """Monitoring indicators (监测指标) with their feed kinds; weights come from the province's parameters.

    ``Indicator`` is defined by :mod:`aidgraph.core.monitoring.indicators` (the monitoring engine).
    """


@hookspec
def aidgraph_graphql_types() -> list[type]:
    """Extra strawberry types a plugin's fields return (added to the schema's ``types``)."""


@hookspec
def aidgraph_graphql_fields() -> GraphQLContribution | None:
    """Strawberry Query and/or Mutation pieces merged into the root types.

    Return a :class:`aidgraph.core.policy.host.GraphQLContribution` with ``query`` and/or ``mutation`` classes
    (``@strawberry.type`` classes whose fields become root fields). A field name contributed twice (by two
    plugins, or by a plugin and the core) is a start-up error naming both contributors.
    """


@hookspec
def aidgraph_search_fields() -> dict[str, dict[str, dict[str, Any]]]:
    """Extra OpenSearch mapping properties: entity kind (``person``, ``household``, ``alert``,
    ``enrollment``) -> field name -> mapping (``{"type": "keyword"}``). Merged by the indexer; the same field
    declared twice with different mappings is a start-up error."""


@hookspec
def aidgraph_search_document(entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """Extra fields for one search document of kind ``entity`` built from ``record`` (a row as a dict).

    Return ``None`` to add nothing. Results of all plugins are merged into the document.
    """


@hookspec
def aidgraph_casbin_objects() -> list[tuple[str, list[str]]]:
    """Casbin object types and the actions on them that the plugin's features check, e.g.
    ``("enrollment", ["apply", "review", "approve", "disburse"])``. Merged (union of actions) by the
    authorization layer to validate policies and list permissions."""


@hookspec(firstresult=True)
def aidgraph_review_interval_months(program: Program, params: ProvinceParams, facts: dict[str, Any]) -> int | None:
    """Months until the next periodic review (复核) of an active enrolment of ``program``.

    ``facts`` describes the household (``on``, ``monthly_earned_income``, ``member_count``, ``members``: each member's
    ``age`` and ``labour_capacity``). GD-2021: tekun and
    stable dibao households yearly, dibao households with unstable income and working-age members every six
    months. ``None`` from everyone: the program has no periodic review.
    """


HOOK_NAMES: tuple[str, ...] = tuple(
    name for name, value in list(globals().items()) if name.startswith("aidgraph_") and callable(value)
)
"""Every hook name, for the documentation and coverage tests and the province guide."""

__all__ = ["hookimpl", "hookspec", "HOOK_NAMES", "PROJECT_NAME"]
