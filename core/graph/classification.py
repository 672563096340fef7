"""Classified management of personal data (PIPL Art. 51: 对个人信息实行分类管理): the one place that says, for
every database column and every GraphQL field of a record type, which class it is and, for sensitive data
(敏感个人信息, PIPL Art. 28), which kind.

Classes: ``PUBLIC`` (reference data anyone may see: division names, program names), ``INTERNAL`` (keys,
versions, bookkeeping: no information about a person by itself), ``PERSONAL`` (个人信息: names, addresses,
relations, dates, statuses of one person or household), ``SENSITIVE`` (敏感个人信息) with its kinds: the
resident ID number, phone, health, disability, income, assets and minors' data.

The sensitive kinds reuse the rights of :mod:`aidgraph.core.graph.privacy` (``GUARDS``): the kind's class there
is what masks or withholds the value in the API, in exports and in search. The GraphQL SDL shows each field's
class as an ``@dataClass`` directive (schema/classification.py); ``aidgraph pipia`` drafts the impact assessment
from this table; tests fail when a column or a record type's field has no class here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aidgraph.core.graph.privacy import GUARDS


class Level(str, enum.Enum):
    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    PERSONAL = "PERSONAL"
    SENSITIVE = "SENSITIVE"


class Kind(str, enum.Enum):
    """Kinds of sensitive personal information (敏感个人信息) held by a social-assistance platform."""

    ID_NUMBER = "ID_NUMBER"      # 居民身份证号码
    PHONE = "PHONE"              # 电话号码
    HEALTH = "HEALTH"            # 健康状况 (疾病、住院、医疗费用)
    DISABILITY = "DISABILITY"    # 残疾类别和等级
    INCOME = "INCOME"            # 收入
    ASSETS = "ASSETS"            # 财产 (存款、证券、房产、车辆)
    MINORS = "MINORS"            # 不满十四周岁未成年人的个人信息 (学段、学年)


KIND_GUARD: dict[Kind, str | None] = {
    Kind.ID_NUMBER: "identity", Kind.PHONE: "identity", Kind.HEALTH: "health", Kind.DISABILITY: "disability",
    Kind.INCOME: "income", Kind.ASSETS: "income", Kind.MINORS: None,
}
"""The privacy class (``privacy.GUARDS``) whose right shows each kind in full; ``None``: no separate right (shown
to whoever may read the person: a gap the PIPIA names)."""
assert all(g is None or g in GUARDS for g in KIND_GUARD.values())

KIND_PURPOSE: dict[Kind, str] = {
    Kind.ID_NUMBER: "identify each resident once (GB 11643), match department feeds and avoid double enrolment",
    Kind.PHONE: "contact applicants and recipients during verification, visits and referrals; contact the "
                "volunteers registered at community volunteer stations (志愿服务, GD-2022 §13)",
    Kind.HEALTH: "assess medical aid, expenditure-type hardship and monitoring indicators (hospitalisation, "
                 "chronic and major disease)",
    Kind.DISABILITY: "assess disability allowances (两项补贴) and rules that depend on disability level",
    Kind.INCOME: "household economic verification (家庭经济状况核对): per-capita income against the standard",
    Kind.ASSETS: "household economic verification: financial and other assets against the province's limits",
    Kind.MINORS: "education aid by school stage; rules for children in the household",
}


@dataclass(frozen=True)
class DataClass:
    level: Level
    kinds: tuple[Kind, ...] = ()

    def __post_init__(self) -> None:
        if (self.level is Level.SENSITIVE) != bool(self.kinds):
            raise ValueError("a SENSITIVE class names its kinds; other classes name none")


PUBLIC = DataClass(Level.PUBLIC)
INTERNAL = DataClass(Level.INTERNAL)
PERSONAL = DataClass(Level.PERSONAL)


def sensitive(*kinds: Kind) -> DataClass:
    return DataClass(Level.SENSITIVE, tuple(kinds))


ID = sensitive(Kind.ID_NUMBER)
PHONE = sensitive(Kind.PHONE)
HEALTH = sensitive(Kind.HEALTH)
DISABILITY = sensitive(Kind.DISABILITY)
INCOME = sensitive(Kind.INCOME)
ASSETS = sensitive(Kind.ASSETS)
INCOME_ASSETS = sensitive(Kind.INCOME, Kind.ASSETS)
MINORS = sensitive(Kind.MINORS)
HEALTH_INCOME = sensitive(Kind.HEALTH, Kind.INCOME)

# --- columns ---------------------------------------------------------------------------------------------

TABLES_NOT_ABOUT_PERSONS: dict[str, DataClass] = {
    "region": PUBLIC, "casbin_rule": INTERNAL, "outbox": INTERNAL, "audit_chain": INTERNAL,
    "household_counter": INTERNAL, "revoked_token": INTERNAL, "reserve_fund": INTERNAL,
    "simulation_scenario": INTERNAL, "alembic_version": INTERNAL, "service_provider": INTERNAL,
    "charity_resource": INTERNAL, "volunteer_station": INTERNAL,
    # 政策找人 bookkeeping: a province's snapshot dates, gap counts per village and program, stale household ids
    "decision_snapshot": INTERNAL, "decision_count": INTERNAL, "decision_stale": INTERNAL,
    "installation": INTERNAL,  # the database's random identity (0022)
    "household_frame_set": INTERNAL,  # which (province, date) household frames are kept, their versions (0023)
}
"""Tables that hold nothing about a person: one class for all their columns."""

ANY_TABLE_COLUMNS: dict[str, DataClass] = {
    "id": INTERNAL, "version": INTERNAL, "created_at": INTERNAL, "updated_at": INTERNAL, "household_id": INTERNAL,
    "person_id": INTERNAL, "enrollment_id": INTERNAL, "alert_id": INTERNAL, "lead_id": INTERNAL,
    "payment_id": INTERNAL, "program_key": INTERNAL, "province_code": INTERNAL, "township_code": INTERNAL,
    "region_code": PERSONAL, "from_region_code": INTERNAL, "actor": PERSONAL, "actor_region_code": INTERNAL,
    "status": PERSONAL, "kind": PERSONAL, "recorded_at": INTERNAL, "recorded_by": PERSONAL, "at": PERSONAL,
}
"""Columns of these names mean the same in every table (keys, bookkeeping, the owning region)."""

COLUMNS: dict[str, DataClass] = {
    # person (居民)
    # the ID number and the phone are stored encrypted (migration 0012); the blind index is a keyed pseudonym of
    # the number, linkable by whoever holds the index key, so it keeps the number's class
    "person.id_number": ID, "person.id_number_index": ID, "person.name": PERSONAL, "person.sex": PERSONAL, "person.birth_date": ID,
    "person.hukou_region_code": PERSONAL, "person.disability_category": DISABILITY,
    "person.disability_level": DISABILITY, "person.chronic_disease": HEALTH, "person.major_disease": HEALTH,
    "person.hospitalised": HEALTH, "person.labour_capacity": HEALTH, "person.employment_status": PERSONAL,
    "person.student_stage": MINORS, "person.school_hardship_tier": MINORS, "person.school_year": MINORS,
    "person.veteran_student": PERSONAL, "person.employment_difficulty_level": PERSONAL,
    "person.business_registered_on": PERSONAL, "person.special_category": PERSONAL, "person.phone": PHONE, "person.death_date": PERSONAL,
    "person.diagnosis": HEALTH, "person.diagnosed_on": HEALTH,
    # household, membership, relationships
    "household.household_number": PERSONAL, "household.address": PERSONAL, "household.housing_need": PERSONAL,
    "membership.relation_to_head": PERSONAL, "membership.valid_from": PERSONAL, "membership.valid_to": PERSONAL,
    "relationship.from_person_id": INTERNAL, "relationship.to_person_id": INTERNAL,
    "relationship.valid_from": PERSONAL, "relationship.valid_to": PERSONAL,
    # economic verification (家庭经济状况核对)
    "economic_item.source": INCOME_ASSETS, "economic_item.amount": INCOME_ASSETS,
    "economic_item.kind": INCOME_ASSETS, "economic_item.period_start": PERSONAL, "economic_item.period_end": PERSONAL,
    "economic_item.row_hash": INTERNAL, "economic_item.source_file": INTERNAL, "economic_item.line_number": INTERNAL,
    # enrolments, steps, payments
    "enrollment.category": PERSONAL, "enrollment.monthly_amount": INCOME, "enrollment.applied_at": PERSONAL,
    "enrollment.decided_at": PERSONAL, "enrollment.start_date": PERSONAL, "enrollment.end_date": PERSONAL,
    "enrollment.gradual_exit_until": PERSONAL, "enrollment.next_review_date": PERSONAL,
    "enrollment.transferred_from_id": INTERNAL, "enrollment.details": INCOME,
    "enrollment_step.action": PERSONAL, "enrollment_step.from_status": PERSONAL, "enrollment_step.to_status": PERSONAL,
    "enrollment_step.note": PERSONAL,
    "payment.amount": INCOME, "payment.period": PERSONAL, "payment.paid_at": PERSONAL, "payment.details": INCOME,
    "payment.installment": INTERNAL,
    # monitoring
    "feed_record.event_date": PERSONAL, "feed_record.payload": HEALTH_INCOME, "feed_record.row_hash": INTERNAL,
    "feed_record.source_file": INTERNAL, "feed_record.line_number": INTERNAL, "feed_record.imported_at": INTERNAL,
    "alert.level": PERSONAL, "alert.score": PERSONAL, "alert.indicators": sensitive(Kind.HEALTH, Kind.INCOME,
                                                                                   Kind.DISABILITY),
    "alert.month": PERSONAL, "alert.raised_at": PERSONAL, "alert.disposition": PERSONAL,
    "alert.disposition_note": PERSONAL,
    "aid_chain_event.summary": sensitive(Kind.HEALTH, Kind.INCOME, Kind.DISABILITY),
    "aid_chain_event.ref_type": INTERNAL, "aid_chain_event.ref_id": INTERNAL,
    # audit, users, idempotency, logins
    "audit_log.action": PERSONAL, "audit_log.object_type": INTERNAL, "audit_log.object_id": INTERNAL,
    "audit_log.remote_addr": PERSONAL, "audit_log.detail": sensitive(Kind.INCOME, Kind.HEALTH),
    "audit_log.seq": INTERNAL, "audit_log.prev_hash": INTERNAL, "audit_log.row_hash": INTERNAL,
    "app_user.username": PERSONAL, "app_user.display_name": PERSONAL, "app_user.active": INTERNAL,
    "app_user.password_hash": INTERNAL, "app_user.password_changed_at": INTERNAL,
    "idempotency_record.actor": PERSONAL, "idempotency_record.operation": INTERNAL, "idempotency_record.key": INTERNAL,
    "idempotency_record.result": PERSONAL, "idempotency_record.request_hash": INTERNAL,
    "login_failure.username": PERSONAL, "login_failure.address": PERSONAL,
    # eligibility decisions kept for 政策找人: eligibility and amounts are decided on the household's income
    "eligibility_decision.program": INTERNAL, "eligibility_decision.eligible": INCOME,
    "eligibility_decision.enrolled": PERSONAL, "eligibility_decision.gap": INCOME,
    "eligibility_decision.monthly_amount": INCOME, "eligibility_decision.one_off_amount": INCOME,
    "eligibility_decision.benefit_label": INCOME, "eligibility_decision.reasons": INCOME,
    # kept household frames (政策模拟, 0023): each chunk's bytes are the household facts of up to 20,000 households
    "household_frame_chunk.first_household_id": INTERNAL, "household_frame_chunk.as_of": INTERNAL,
    "household_frame_chunk.households": INTERNAL,
    "household_frame_chunk.data": sensitive(Kind.HEALTH, Kind.DISABILITY, Kind.INCOME, Kind.ASSETS, Kind.MINORS),
    # storage only (retention)
    "retained_record.record_class": INTERNAL, "retained_record.object_type": INTERNAL,
    "retained_record.object_id": INTERNAL, "retained_record.ended_on": PERSONAL, "retained_record.hold_until": INTERNAL,
    "retained_record.payload": INCOME, "retained_record.moved_at": INTERNAL,
    # casework (issue 13): leads, visits, referrals, emergencies, reserve funds, temporary aid
    "lead.id_number": ID, "lead.name": PERSONAL, "lead.address": PERSONAL, "lead.channel": INTERNAL,
    "lead.description": sensitive(Kind.HEALTH, Kind.INCOME), "lead.reported_by": PERSONAL,
    "lead.close_reason": PERSONAL, "lead.created_by": PERSONAL, "lead.closed_at": PERSONAL,
    "visit.visited_on": PERSONAL, "visit.visitor": PERSONAL, "visit.findings": sensitive(Kind.HEALTH, Kind.INCOME),
    "visit.needs_help": PERSONAL,
    "referral.department": PERSONAL, "referral.reason": sensitive(Kind.HEALTH, Kind.INCOME),
    "referral.documents": PERSONAL, "referral.due_date": INTERNAL, "referral.answer": PERSONAL,
    "referral.source": INTERNAL, "referral.source_id": INTERNAL, "referral.sent_by": PERSONAL,
    "referral.sent_at": PERSONAL, "referral.answered_by": PERSONAL, "referral.answered_at": PERSONAL,
    "emergency_event.occurred_on": PERSONAL, "emergency_event.explanation_due": INTERNAL,
    "emergency_event.explained_on": PERSONAL, "emergency_event.explanation": PERSONAL,
    "reserve_fund_entry.amount": INCOME, "reserve_fund_entry.balance_after": INTERNAL,
    "reserve_fund_entry.note": PERSONAL,
    "temporary_aid_approval.approved_total": INCOME, "temporary_aid_approval.level": INTERNAL,
    "temporary_aid_approval.approved_by": PERSONAL, "temporary_aid_approval.approved_on": PERSONAL,
    "temporary_aid_approval.basis": PERSONAL,
    "temporary_aid_stage.due_date": INTERNAL, "temporary_aid_stage.amount": INCOME,
    "temporary_aid_stage.from_reserve": INTERNAL, "temporary_aid_stage.paid_at": PERSONAL,
    # medical claims (plugin medical)
    "medical_claim.admission_date": HEALTH, "medical_claim.category": HEALTH, "medical_claim.major_disease": HEALTH,
    "medical_claim.compliant_cost": HEALTH_INCOME, "medical_claim.insurance_paid": HEALTH_INCOME,
    "medical_claim.deductible_applied": HEALTH_INCOME, "medical_claim.aid_amount": HEALTH_INCOME,
    "medical_claim.secondary_aid_amount": HEALTH_INCOME, "medical_claim.out_of_pocket": HEALTH_INCOME,
    "medical_claim.reasons": HEALTH_INCOME, "medical_claim.settled_at": PERSONAL, "medical_claim.settled_by": PERSONAL,
    # verification consent and economic verification (家庭经济状况核对授权), recovery orders (追回)
    "referral.shared_verification_id": INTERNAL,
    "recovery_order.amount": INCOME, "recovery_order.recovered": INCOME, "recovery_order.reason": PERSONAL,
    "recovery_order.issued_by": PERSONAL, "recovery_order.issued_at": PERSONAL,
    "verification_consent.signed_by_person_id": INTERNAL, "verification_consent.person_ids": INTERNAL,
    "verification_consent.signed_on": PERSONAL, "verification_consent.valid_until": PERSONAL,
    "verification_consent.document_ref": PERSONAL,
    "economic_verification.authorisation_id": INTERNAL, "economic_verification.as_of": PERSONAL,
    "economic_verification.result": INCOME_ASSETS, "economic_verification.verified_by": PERSONAL,
    "economic_verification.verified_at": PERSONAL,
    # service-type aid (服务类救助) and charity matching (慈善衔接)
    "service_order.service": sensitive(Kind.HEALTH, Kind.DISABILITY), "service_order.provider_id": INTERNAL,
    "service_order.visits": PERSONAL, "service_order.last_visit_on": PERSONAL,
    "service_order.note": sensitive(Kind.HEALTH, Kind.DISABILITY), "service_order.created_by": PERSONAL,
    "service_order.closed_at": PERSONAL,
    "charity_match.resource_id": INTERNAL, "charity_match.amount": INCOME, "charity_match.note": PERSONAL,
    "charity_match.matched_by": PERSONAL, "charity_match.matched_at": PERSONAL,
    # volunteer service (志愿服务): the volunteer's own name and phone (encrypted like person.phone), the tasks they
    # offer; an assignment's notes and results are free text about a household (its health, its income)
    "volunteer.station_id": INTERNAL, "volunteer.name": PERSONAL, "volunteer.phone": PHONE,
    "volunteer.tasks": PERSONAL, "volunteer.active": INTERNAL, "volunteer.registered_by": PERSONAL,
    "volunteer_assignment.volunteer_id": INTERNAL, "volunteer_assignment.task": PERSONAL,
    "volunteer_assignment.visit_id": INTERNAL, "volunteer_assignment.note": sensitive(Kind.HEALTH, Kind.INCOME),
    "volunteer_assignment.result": sensitive(Kind.HEALTH, Kind.INCOME),
    "volunteer_assignment.satisfaction": PERSONAL, "volunteer_assignment.assigned_by": PERSONAL,
    "volunteer_assignment.assigned_at": PERSONAL, "volunteer_assignment.completed_by": PERSONAL,
    "volunteer_assignment.completed_at": PERSONAL,
}


def column_class(table: str, column: str) -> DataClass | None:
    """The class of ``table.column``, or None when nobody classified it (a test fails on that)."""
    if table in TABLES_NOT_ABOUT_PERSONS:
        return TABLES_NOT_ABOUT_PERSONS[table]
    return COLUMNS.get(f"{table}.{column}") or ANY_TABLE_COLUMNS.get(column)


# --- GraphQL fields --------------------------------------------------------------------------------------

TYPES_NOT_ABOUT_PERSONS: dict[str, DataClass] = {
    "Region": PUBLIC, "Program": PUBLIC, "PageInfo": INTERNAL, "UserError": INTERNAL, "FacetBucket": INTERNAL,
    "SearchFacet": INTERNAL, "RegionStats": INTERNAL, "SimulationCount": INTERNAL, "SimulationTotals": INTERNAL,
    "WinnersLosers": INTERNAL, "PolicySimulation": INTERNAL, "ProgramSimulation": INTERNAL,
    "RegionSimulation": INTERNAL, "ReserveFund": INTERNAL, "MonthlyStatistics": INTERNAL,
    "ProgramMonthStats": INTERNAL, "RegionMonthStats": INTERNAL, "StatisticsExportPayload": INTERNAL,
    "ServiceProvider": INTERNAL, "CharityResource": INTERNAL, "VolunteerStation": INTERNAL,
    "SimulationSummary": INTERNAL, "ScenarioChange": INTERNAL, "ScenarioDelta": INTERNAL, "ScenarioRerun": INTERNAL,
    "ScenarioComparison": INTERNAL,
}
"""Object types that describe no person (aggregates, reference data, errors): one class for all fields."""

WRAPPER_SUFFIXES = ("Connection", "Edge", "Payload")
"""Pagination and mutation wrappers: their fields point at classified records (or at errors)."""
WRAPPER_LINKS = frozenset({"edges", "node", "cursor", "pageInfo", "totalCount", "errors", "claim", "lead", "visit",
                           "referral", "reserveFund", "case", "person", "household", "enrollment", "alert",
                           "provider", "order", "resource", "scenario"})

ANY_TYPE_FIELDS: dict[str, DataClass] = {
    "id": INTERNAL, "household": INTERNAL, "person": INTERNAL, "program": PUBLIC, "township": PUBLIC,
    "region": PUBLIC, "errors": INTERNAL, "status": PERSONAL, "kind": PERSONAL, "at": PERSONAL,
    "enrollment": INTERNAL, "alert": INTERNAL,
}
"""Fields of these names mean the same on every type (links to other classified records are INTERNAL)."""

FIELDS: dict[str, DataClass] = {
    "Person.name": PERSONAL, "Person.idNumber": ID, "Person.sex": PERSONAL, "Person.birthDate": ID,
    "Person.age": PERSONAL, "Person.hukouRegionCode": PERSONAL, "Person.disabilityLevel": DISABILITY,
    "Person.disabilityCategory": DISABILITY, "Person.chronicDisease": HEALTH, "Person.majorDisease": HEALTH,
    "Person.hospitalised": HEALTH, "Person.employmentStatus": PERSONAL, "Person.labourCapacity": HEALTH,
    "Person.studentStage": MINORS, "Person.phone": PHONE, "Person.deathDate": PERSONAL,
    "Person.households": INTERNAL, "Person.relationships": PERSONAL, "Person.supportObligors": PERSONAL,
    "Household.householdNumber": PERSONAL, "Household.address": PERSONAL, "Household.members": PERSONAL,
    "Household.memberCount": PERSONAL, "Household.head": INTERNAL, "Household.categories": PERSONAL,
    "Household.warningLevel": PERSONAL, "Household.economics": INCOME_ASSETS, "Household.enrollments": INTERNAL,
    "Household.alerts": INTERNAL, "Household.aidChain": PERSONAL,
    "Membership.relationToHead": PERSONAL, "Membership.since": PERSONAL, "Membership.until": PERSONAL,
    "Relationship.since": PERSONAL, "Relationship.until": PERSONAL,
    "Economics.perCapitaMonthlyIncome": INCOME, "Economics.monthlyIncome": INCOME,
    "Economics.monthlyIncomeDeduction": INCOME, "Economics.totalFinancialAssets": ASSETS,
    "Economics.perCapitaFinancialAssets": ASSETS, "Economics.annualExpenditure": HEALTH_INCOME,
    "Economics.assessedAt": PERSONAL,
    "Enrollment.monthlyAmount": INCOME, "Enrollment.startDate": PERSONAL, "Enrollment.endDate": PERSONAL,
    "Enrollment.gradualExitUntil": PERSONAL, "Enrollment.nextReviewDate": PERSONAL,
    "Enrollment.appliedAt": PERSONAL, "Enrollment.category": PERSONAL,
    "Alert.level": PERSONAL, "Alert.score": PERSONAL, "Alert.indicators": sensitive(Kind.HEALTH, Kind.INCOME,
                                                                                   Kind.DISABILITY),
    "Alert.raisedAt": PERSONAL, "Alert.month": PERSONAL, "Alert.disposition": PERSONAL,
    "AidChainEvent.summary": sensitive(Kind.HEALTH, Kind.INCOME, Kind.DISABILITY),
    "AuditEntry.actor": PERSONAL, "AuditEntry.action": PERSONAL, "AuditEntry.objectType": INTERNAL,
    "AuditEntry.objectId": INTERNAL, "AuditEntry.regionCode": PERSONAL, "AuditEntry.remoteAddr": PERSONAL,
    "AuditEntry.detail": sensitive(Kind.INCOME, Kind.HEALTH),
    "EligibilityGap.reasons": INCOME, "EligibilityGap.monthlyAmount": INCOME,
    "EligibilityResult.eligible": INCOME, "EligibilityResult.reasons": INCOME,
    "EligibilityResult.monthlyAmount": INCOME, "EligibilityResult.oneOffAmount": INCOME,
    "EligibilityResult.enrolled": PERSONAL,
    "AffectedHousehold.baselineEligible": INCOME, "AffectedHousehold.reformEligible": INCOME,
    "AffectedHousehold.baselineAmount": INCOME, "AffectedHousehold.reformAmount": INCOME,
    "AffectedHousehold.reasons": INCOME,
    "AffectedHousehold.baselineOneOffAmount": INCOME, "AffectedHousehold.reformOneOffAmount": INCOME,
    "SimulationScenario.name": INTERNAL, "SimulationScenario.provinceCode": INTERNAL,
    "SimulationScenario.asOf": INTERNAL, "SimulationScenario.changes": INTERNAL,
    "SimulationScenario.createdBy": PERSONAL, "SimulationScenario.createdAt": INTERNAL,
    "SimulationScenario.summary": INTERNAL,
    "VerificationCandidate.programKey": PUBLIC, "VerificationCandidate.programName": PUBLIC,
    "VerificationCandidate.reasons": INCOME, "VerificationCandidate.monthlyAmount": INCOME,
    "Me.username": PERSONAL, "Me.displayName": PERSONAL, "Me.roles": INTERNAL, "Me.scopes": INTERNAL,
    "MedicalClaim.category": HEALTH, "MedicalClaim.compliantCost": HEALTH_INCOME,
    "MedicalClaim.insurancePaid": HEALTH_INCOME, "MedicalClaim.aidAmount": HEALTH_INCOME,
    "MedicalClaim.secondaryAidAmount": HEALTH_INCOME, "MedicalClaim.outOfPocket": HEALTH_INCOME,
    "MedicalClaim.reasons": HEALTH_INCOME,
    "Lead.channel": INTERNAL, "Lead.description": sensitive(Kind.HEALTH, Kind.INCOME), "Lead.reportedBy": PERSONAL,
    "Lead.address": PERSONAL, "Lead.name": PERSONAL, "Lead.idNumber": ID, "Lead.createdAt": PERSONAL,
    "Lead.closeReason": PERSONAL,
    "Visit.visitedOn": PERSONAL, "Visit.visitor": PERSONAL, "Visit.findings": sensitive(Kind.HEALTH, Kind.INCOME),
    "Visit.needsHelp": PERSONAL, "Visit.leadId": INTERNAL,
    "Referral.department": PERSONAL, "Referral.reason": sensitive(Kind.HEALTH, Kind.INCOME),
    "Referral.documents": PERSONAL, "Referral.dueDate": INTERNAL, "Referral.overdue": INTERNAL,
    "Referral.sentAt": PERSONAL, "Referral.sentBy": PERSONAL, "Referral.source": INTERNAL,
    "Referral.answeredAt": PERSONAL, "Referral.answer": PERSONAL, "Referral.fromRegion": PUBLIC,
    "ReserveFundEntry.amount": INCOME, "ReserveFundEntry.balanceAfter": INTERNAL, "ReserveFundEntry.actor": PERSONAL,
    "ReserveFundEntry.note": PERSONAL,
    "TemporaryAidCase.approvedTotal": INCOME, "TemporaryAidCase.level": INTERNAL,
    "TemporaryAidCase.approvedBy": PERSONAL, "TemporaryAidCase.approvedOn": PERSONAL,
    "TemporaryAidCase.basis": PERSONAL, "TemporaryAidCase.stages": INTERNAL,
    "TemporaryAidCase.scheduledTotal": INCOME, "TemporaryAidCase.paidTotal": INCOME,
    "TemporaryAidStage.dueDate": INTERNAL, "TemporaryAidStage.amount": INCOME,
    "TemporaryAidStage.fromReserve": INTERNAL, "TemporaryAidStage.paidAt": PERSONAL,
    "DisposeAlertPayload.candidates": INCOME, "DisposeAlertPayload.enrollmentId": INTERNAL,
    "DisposeAlertPayload.referralId": INTERNAL,
    "ReviewPayload.changed": PERSONAL, "ReviewPayload.reasons": INCOME,
    "SearchConnection.facets": INTERNAL, "SearchEdge.score": INTERNAL, "SearchEdge.highlights": PERSONAL,
    "AcceptApplicationPayload.accepted": INTERNAL, "AcceptedApplication.routedTo": PUBLIC,
    "AcceptedApplication.dueDate": INTERNAL, "AcceptedApplication.documents": PERSONAL,
    "AcceptedApplication.referral": INTERNAL,
    "EmergencyEvent.regionCode": PERSONAL, "EmergencyEvent.occurredOn": PERSONAL,
    "EmergencyEvent.explanationDue": INTERNAL, "EmergencyEvent.explainedOn": PERSONAL,
    "EmploymentSupport.personId": INTERNAL, "EmploymentSupport.difficultyLevel": PERSONAL,
    "EmploymentSupport.businessRegisteredOn": PERSONAL,
    "StudentStatus.personId": INTERNAL, "StudentStatus.stage": MINORS, "StudentStatus.schoolYear": MINORS,
    "StudentStatus.hardshipTier": MINORS, "StudentStatus.veteranStudent": PERSONAL,
    "Diagnosis.personId": INTERNAL, "Diagnosis.diagnosis": HEALTH, "Diagnosis.diagnosedOn": HEALTH,
    "DiagnosisPayload.diagnosis": INTERNAL,
    "Referral.sharedVerification": INTERNAL,
    "EconomicVerificationResult.asOf": PERSONAL, "EconomicVerificationResult.members": PERSONAL,
    "EconomicVerificationResult.monthlyIncome": INCOME, "EconomicVerificationResult.perCapitaMonthlyIncome": INCOME,
    "EconomicVerificationResult.totalFinancialAssets": ASSETS,
    "PublicDisclosure.villageCode": PUBLIC, "PublicDisclosure.villageName": PUBLIC,
    "PublicDisclosure.publishedOn": PUBLIC, "PublicDisclosure.until": PUBLIC, "PublicDisclosure.lines": PERSONAL,
    "DisclosureLine.maskedName": PERSONAL, "DisclosureLine.householdSize": PERSONAL,
    "DisclosureLine.programKey": PUBLIC, "DisclosureLine.monthlyAmount": INCOME, "DisclosureLine.since": PERSONAL,
    "DisclosureNoticePayload.notice": INTERNAL, "InspectionSamplePayload.sample": INTERNAL,
    "InspectionSample.seed": INTERNAL, "InspectionSample.enrollments": INTERNAL,
    "InspectionSample.assignments": INTERNAL, "InspectionAssignment.inspectors": PERSONAL,
    "HouseholdChangePayload.reviewBroughtForward": INTERNAL,
    "CharityCandidate.monthlyIncome": INCOME, "CharityCandidate.monthlyAid": INCOME,
    "CharityCandidate.monthlyRigidExpenditure": sensitive(Kind.INCOME, Kind.HEALTH),
    "CharityCandidate.monthlyShortfall": INCOME, "CharityCandidate.receiving": PERSONAL,
    "CharityCandidate.charityMatches": PERSONAL,
    "RecoveryOrderPayload.order": INTERNAL, "RecoveryOrder.amount": INCOME, "RecoveryOrder.recovered": INCOME,
    "RecoveryOrder.reason": PERSONAL, "RecoveryOrder.issuedBy": PERSONAL, "RecoveryOrder.issuedAt": PERSONAL,
    "Payment.period": PERSONAL, "Payment.installment": INTERNAL, "Payment.amount": INCOME, "Payment.paidAt": PERSONAL,
    "AuthorisationPayload.authorisation": INTERNAL, "VerificationAuthorisation.signedOn": PERSONAL,
    "VerificationAuthorisation.validUntil": PERSONAL, "VerificationAuthorisation.documentRef": PERSONAL,
    "VerificationAuthorisation.membersCovered": PERSONAL, "VerificationPayload.verification": INTERNAL,
    "EmergencyPayload.event": INTERNAL, "HousingNeedPayload.housingNeed": PERSONAL,
    "EmploymentSupportPayload.employment": INTERNAL, "PersonCategoryPayload.category": PERSONAL, "StudentStatusPayload.student": INTERNAL,
    "ServiceOrder.service": sensitive(Kind.HEALTH, Kind.DISABILITY), "ServiceOrder.visits": PERSONAL,
    "ServiceOrder.lastVisitOn": PERSONAL,
    "Volunteer.name": PERSONAL, "Volunteer.phone": PHONE, "Volunteer.tasks": PERSONAL, "Volunteer.active": INTERNAL,
    "Volunteer.registeredAt": PERSONAL, "Volunteer.stationId": INTERNAL,
    "VolunteerAssignment.task": PERSONAL, "VolunteerAssignment.taskName": PERSONAL,
    "VolunteerAssignment.regionCode": PERSONAL, "VolunteerAssignment.volunteer": INTERNAL,
    "VolunteerAssignment.visit": INTERNAL, "VolunteerAssignment.lead": INTERNAL,
    "VolunteerAssignment.note": sensitive(Kind.HEALTH, Kind.INCOME),
    "VolunteerAssignment.result": sensitive(Kind.HEALTH, Kind.INCOME), "VolunteerAssignment.satisfaction": PERSONAL,
    "VolunteerAssignment.assignedBy": PERSONAL, "VolunteerAssignment.assignedAt": PERSONAL,
    "VolunteerAssignment.completedAt": PERSONAL,
    "VolunteerStationPayload.station": INTERNAL, "VolunteerPayload.volunteer": INTERNAL,
    "VolunteerAssignmentPayload.assignment": INTERNAL,
}


def field_class(type_name: str, field_name: str) -> DataClass | None:
    """The class of GraphQL field ``type_name.field_name``, or None when nobody classified it."""
    if type_name in TYPES_NOT_ABOUT_PERSONS:
        return TYPES_NOT_ABOUT_PERSONS[type_name]
    found = FIELDS.get(f"{type_name}.{field_name}")
    if found is not None:
        return found
    if type_name.endswith(WRAPPER_SUFFIXES) and field_name in WRAPPER_LINKS:
        return INTERNAL
    return ANY_TYPE_FIELDS.get(field_name)


def sensitive_entries() -> dict[Kind, dict[str, list[str]]]:
    """For each sensitive kind: the columns and GraphQL fields of that kind (for the PIPIA)."""
    out: dict[Kind, dict[str, list[str]]] = {k: {"columns": [], "fields": []} for k in Kind}
    for key, c in COLUMNS.items():
        for k in c.kinds:
            out[k]["columns"].append(key)
    for key, c in FIELDS.items():
        for k in c.kinds:
            out[k]["fields"].append(key)
    return out
