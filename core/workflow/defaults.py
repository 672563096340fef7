"""The core's own default plugin: the workflow's parameters and the enrolment Casbin object.

Registered through the ``aidgraph`` entry-point group under the name ``core.workflow``, like every other
plugin (the plugin host imports no plugin by name), and enabled in every province.
"""

from __future__ import annotations

from aidgraph.core.policy.hookspecs import hookimpl
from aidgraph.core.policy.parameters import ParamSpec
from aidgraph.core.workflow.enrollment import OBJECT
from aidgraph.core.workflow.reviews import parameter_schemas as review_parameter_schemas

PLUGIN_NAME = "core.workflow"


@hookimpl
def aidgraph_parameter_schemas() -> list[ParamSpec]:
    return [
        ParamSpec("workflow.township_approval", "list",
                  "审批权限下放到乡镇: program keys whose approval is delegated to townships (GD-2021 Pearl "
                  "River Delta; FJ-2021 tekun, dibao and temporary aid)", regional=True),
        *review_parameter_schemas(),  # 复核: what counts as a significant change (core/workflow/reviews.py)
    ]


@hookimpl
def aidgraph_casbin_objects() -> list[tuple[str, list[str]]]:
    return [(OBJECT, ["read", "apply", "review", "approve", "disburse"])]
