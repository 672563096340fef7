"""Workflow floor: applications, decisions, payments, reviews and transfers of enrolments (申请、审核、审批).

:mod:`.enrollment` is the state machine; :mod:`.defaults` the core's default workflow plugin (its parameters
and Casbin actions), registered through the entry-point group like every other plugin.
"""
