"""The enrolment workflow (申请、审核、审批、发放): applications, decisions, payments, reviews, transfers.

(Work in progress: the workflow services are added in the next step; the core's own workflow parameters are
declared here already so that province configurations validate.)
"""

from __future__ import annotations

from core.hookspecs import hookimpl
from core.parameters import ParamSpec


class WorkflowPlugin:
    """The core's own default plugin: workflow parameters and the enrolment Casbin object."""

    PLUGIN_NAME = "core.workflow"

    @hookimpl
    def aidgraph_parameter_schemas(self) -> list[ParamSpec]:
        return [
            ParamSpec("workflow.township_approval", "list",
                      "审批权限下放到乡镇: program keys whose approval is delegated to townships (GD-2021 Pearl "
                      "River Delta; FJ-2021 tekun, dibao and temporary aid)", regional=True),
        ]

    @hookimpl
    def aidgraph_casbin_objects(self) -> list[tuple[str, list[str]]]:
        return [("enrollment", ["read", "apply", "review", "approve", "disburse"])]
