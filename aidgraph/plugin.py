"""The one module plugin authors import: ``from aidgraph.plugin import hookimpl, Program, EligibilityRule, ...``.

Everything a plugin needs from the platform is exported here (see ``__all__``): the hook marker, the
contract's types and expression helpers (:mod:`aidgraph.core.policy.contract`), the parameter model, the
monitoring context indicators read, the services a plugin's own mutations write through (aid chain, audit,
Casbin checks, domain errors, the shared models) and the GraphQL helpers a plugin's fields use. The built-in
plugins and ``docs/PROVINCE_GUIDE.md`` use only this module, so the platform's inner layout can change
without breaking a province's plugin.
"""

from __future__ import annotations

from aidgraph.core.access import authz
from aidgraph.core.access.actor import Actor
from aidgraph.core.graph import aidchain, audit
from aidgraph.core.graph import idempotency  # the one idempotency-key helper: idempotency.claim(...)
from aidgraph.core.graph import privacy  # what a caller may see: privacy.free_text(...) for notes
from aidgraph.core.graph.idnumber import age_on
from aidgraph.core.monitoring.cycle import BANDS_KEY, Bands, MonitoringError
from aidgraph.core.monitoring.indicators import IndicatorContext, as_hits
from aidgraph.core.policy.contract import (
    ABLE_TO_WORK,
    ADULT_AGE,
    PROGRAM_SEARCH_FIELDS,
    BenefitFormula,
    EligibilityRule,
    EnrollmentEvent,
    GraphQLContribution,
    IncomeDeduction,
    Indicator,
    Program,
    RuleContext,
    any_member,
    count_members,
    fmt,
    member,
    program_search_document,
    receiving,
    receiving_any,
    text,
    yuan,
)
from aidgraph.core.policy.hookspecs import hookimpl
from aidgraph.core.policy.parameters import ParamSpec, ProvinceParams
from aidgraph.core.storage import models
from aidgraph.core.storage.errors import DomainError, ErrorCode, FieldError, not_found
from aidgraph.core.storage.validity import valid_on
from aidgraph.core.storage.rls import widened
from aidgraph.core.workflow import casework
from aidgraph.core.storage.models import (
    EXPENDITURE_KINDS,
    INCOME_KINDS,
    AidChainKind,
    Base,
    Enrollment,
    Household,
    Membership,
    Money,
    Person,
    utcnow,
)
from aidgraph.schema.context import Info
from aidgraph.schema.errors import UserError, run_mutation
from aidgraph.schema.programs import policy_engine
from aidgraph.schema.relay import db_id

__all__ = [
    "ABLE_TO_WORK", "ADULT_AGE", "BANDS_KEY", "EXPENDITURE_KINDS", "INCOME_KINDS", "AidChainKind", "Enrollment", "Household",
    "Membership", "Person", "PROGRAM_SEARCH_FIELDS", "Actor", "Bands", "Base", "BenefitFormula", "DomainError",
    "EligibilityRule", "EnrollmentEvent", "ErrorCode", "FieldError", "GraphQLContribution", "IncomeDeduction",
    "Indicator", "IndicatorContext", "Info", "Money", "MonitoringError", "ParamSpec", "Program", "ProvinceParams",
    "idempotency", "privacy",
    "RuleContext", "UserError", "age_on", "aidchain", "any_member", "as_hits", "audit", "authz", "count_members",
    "db_id", "fmt", "hookimpl", "member", "models", "not_found", "policy_engine", "program_search_document",
    "receiving", "receiving_any", "run_mutation", "text", "utcnow", "valid_on", "widened", "yuan",
    "casework",
]
