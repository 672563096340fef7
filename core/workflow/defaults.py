"""The core's own default plugin: the workflow's parameters and the Casbin objects of enrolments and casework.

Registered through the ``aidgraph`` entry-point group under the name ``core.workflow``, like every other
plugin (the plugin host imports no plugin by name), and enabled in every province.

Casework (issue 13) adds: the province's list of receiving departments (分办转办 to the departments of GD-2021
"落实部门责任"), the time limit per department for a referral (限时办理; no source gives days: illustrative), the
department an alert's REFER disposition goes to when the caseworker names none, the level of the alert a
reported lead raises, and the township's approval limit for temporary aid (分级审批; no source gives the amount:
illustrative). Objects: ``referral`` (read, create = refer, update = answer, export), ``lead`` (read, create =
report, update = close or visit) and ``reserve_fund`` (read, create = replenish, disburse = draw).
"""

from __future__ import annotations

from decimal import Decimal

from aidgraph.core.policy.hookspecs import hookimpl
from aidgraph.core.policy.parameters import ParamSpec
from aidgraph.core.storage.errors import DomainError, ErrorCode
from aidgraph.core.storage.models import Enrollment
from aidgraph.core.workflow.enrollment import OBJECT
from aidgraph.core.workflow.reviews import parameter_schemas as review_parameter_schemas
from aidgraph.core.workflow.retention_params import parameter_schemas as retention_parameter_schemas

PLUGIN_NAME = "core.workflow"

REFERRAL_OBJECT = "referral"
LEAD_OBJECT = "lead"
RESERVE_FUND_OBJECT = "reserve_fund"
SERVICE_OBJECT = "service"
CHARITY_OBJECT = "charity"
VOLUNTEER_OBJECT = "volunteer"
"""志愿服务 (GD-2022 §13): stations, volunteers and their assignments (read; create = add a station, register;
update = assign, complete, deactivate)."""
SERVICES = ("elderly_care", "disability_care", "rehabilitation", "counselling", "case_management", "home_education")
"""Service-type assistance the sources name (GD-2021 §2 照料护理、康复训练、心理疏导; §19 社会工作; GD-2024 失能老年人
生活照护; 送教上门): the keys ``workflow.service_programs`` may enable."""


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("workflow.township_approval", "list",
                  "审批权限下放到乡镇: program keys whose approval is delegated to townships (GD-2021 Pearl "
                  "River Delta; FJ-2021 tekun, dibao and temporary aid)", regional=True),
        ParamSpec("workflow.democratic_review", "string",
                  "民主评议: DISPUTED_ONLY (only for applications with a recorded dispute, GD-2021 对没有争议的救助申请家庭"
                  "不再进行民主评议) or ALL", required=False, regional=True, choices=("DISPUTED_ONLY", "ALL")),
        *review_parameter_schemas(),  # 复核: what counts as a significant change (core/workflow/reviews.py)
        *retention_parameter_schemas(),  # 保存期限 per record class (core/workflow/retention_params.py)
        ParamSpec("workflow.departments", "table",
                  "分办转办: the departments a case may be referred to, key -> name (GD-2021 落实部门责任; issue 13)"),
        ParamSpec("workflow.referral_days", "table",
                  "限时办理: days a receiving department has to answer a referral, by department key, with "
                  "'default' for the others", unit="calendar days", regional=True),
        ParamSpec("workflow.alert_referral_department", "string",
                  "the department an alert's REFER disposition goes to when the caseworker names none"),
        ParamSpec("workflow.lead_alert_level", "string",
                  "the warning level of the alert a reported lead raises (主动发现+报告) until verification",
                  choices=("RED", "ORANGE", "YELLOW", "BLUE", "GREEN")),
        ParamSpec("workflow.temporary_township_limit", "number",
                  "分级审批: the largest temporary-aid total a township may approve; above it the county approves",
                  unit="yuan", regional=True, minimum=0),
        ParamSpec("workflow.disclosure_days", "integer",
                  "公示: days a village's recipient list stays posted", unit="days", regional=True, minimum=1),
        ParamSpec("workflow.inspection_sample_size", "integer",
                  "双随机: cases drawn per county for re-verification when the inspector names no size", minimum=1),
        ParamSpec("workflow.authorisation_valid_days", "integer",
                  "一证一书: days a signed verification authorisation stays valid", unit="days", minimum=1),
        ParamSpec("workflow.service_programs", "list",
                  "物质+服务: service-type assistance the province enables", regional=True, choices=SERVICES),
    ]


@hookimpl
def aidgraph_casbin_objects() -> list[tuple[str, list[str]]]:
    return [(OBJECT, ["read", "apply", "review", "approve", "disburse"]),
            (REFERRAL_OBJECT, ["read", "create", "update", "export"]),
            (LEAD_OBJECT, ["read", "create", "update"]),
            (RESERVE_FUND_OBJECT, ["read", "create", "disburse"]),
            (SERVICE_OBJECT, ["read", "create", "update"]),
            (CHARITY_OBJECT, ["read", "create", "update"]),
            (VOLUNTEER_OBJECT, ["read", "create", "update"])]


TEMPORARY_AID_DOMAIN = "emergency"


@hookimpl
async def aidgraph_enrollment_changed(event) -> None:
    """分级审批 (GD-2021, GD-2022) on every approval of temporary aid, also through the enrolment state machine's
    APPROVE: above ``workflow.temporary_township_limit`` only an approver at county level may approve. Raising here
    aborts the whole transaction (the step is not written)."""
    if event.program.domain != TEMPORARY_AID_DOMAIN or event.to_status != "APPROVED":
        return None
    enrollment = await event.session.get(Enrollment, event.enrollment_id)
    details = (enrollment.details or {}) if enrollment is not None else {}
    amount = details.get("approved_total") or details.get("one_off_amount")
    if enrollment is None or amount is None or not event.params.has("workflow.temporary_township_limit"):
        return None
    limit = event.params.value("workflow.temporary_township_limit", event.on, region=enrollment.region_code)
    if Decimal(str(amount)) > Decimal(str(limit)) and \
            not event.actor.scope("approve", OBJECT).contains(enrollment.region_code[:6]):
        raise DomainError.single(ErrorCode.FORBIDDEN, f"分级审批: {amount} yuan of temporary aid is above the "
                                                      f"township's limit of {limit} yuan "
                                                      f"({event.params.cite('workflow.temporary_township_limit')}): "
                                                      "the county approves", "action")
    return None
