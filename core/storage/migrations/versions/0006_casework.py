"""Casework (issue 13): referrals across departments with due dates, leads reported by people, visits, and the
temporary-aid mechanics (township reserve funds and their ledger, one approval per case, scheduled stages).

Fourteen new tables (also recovery orders against payments; the verification authorisation 一证一书 and
the verifications run under it; service providers and orders; charity resources and matches), nothing existing
changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reserve_fund',
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.Column('balance', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_reserve_fund_balance_not_negative')),
    sa.ForeignKeyConstraint(['township_code'], ['region.code'], name=op.f('fk_reserve_fund_township_code_region')),
    sa.PrimaryKeyConstraint('township_code', name=op.f('pk_reserve_fund'))
    )
    op.create_table('referral',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('from_region_code', sa.String(length=12), nullable=True),
    sa.Column('department', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('documents', sa.JSON(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('source_id', sa.BigInteger(), nullable=True),
    sa.Column('sent_by', sa.String(length=64), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=False),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('shared_verification_id', sa.BigInteger(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("source IN ('CASEWORKER', 'ALERT', 'ENROLLMENT', 'APPLICATION')", name=op.f('ck_referral_source_enum')),
    sa.CheckConstraint("status IN ('SENT', 'ACCEPTED', 'DONE', 'RETURNED')", name=op.f('ck_referral_status_enum')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_referral_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_referral_person_id_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral'))
    )
    op.create_index(op.f('ix_referral_household_id'), 'referral', ['household_id'], unique=False)
    op.create_index('ix_referral_region_status_due', 'referral', ['region_code', 'status', 'due_date'], unique=False)
    op.create_table('lead',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('id_number', sa.String(length=18), nullable=True),
    sa.Column('name', sa.String(length=50), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('reported_by', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("channel IN ('VILLAGE_ASSISTANT', 'VISIT', 'HOTLINE_12345', 'HOTLINE_12349', 'NEIGHBOUR', 'SELF', 'OTHER')", name=op.f('ck_lead_channel_enum')),
    sa.CheckConstraint("status IN ('OPEN', 'ALERTED', 'CLOSED')", name=op.f('ck_lead_status_enum')),
    sa.CheckConstraint('person_id IS NOT NULL OR id_number IS NOT NULL OR address IS NOT NULL', name=op.f('ck_lead_person_or_address')),
    sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], name=op.f('fk_lead_alert_id_alert'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_lead_household_id_household'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_lead_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['township_code'], ['region.code'], name=op.f('fk_lead_township_code_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead'))
    )
    op.create_index('ix_lead_region_status', 'lead', ['region_code', 'status'], unique=False)
    op.create_index(op.f('ix_lead_township_code'), 'lead', ['township_code'], unique=False)
    op.create_table('reserve_fund_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('balance_after', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('REPLENISH', 'DRAW')", name=op.f('ck_reserve_fund_entry_kind_enum')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_reserve_fund_entry_amount_positive')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_reserve_fund_entry_balance_not_negative')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_reserve_fund_entry_enrollment_id_enrollment'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['township_code'], ['reserve_fund.township_code'], name=op.f('fk_reserve_fund_entry_township_code_reserve_fund')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reserve_fund_entry'))
    )
    op.create_index(op.f('ix_reserve_fund_entry_township_code'), 'reserve_fund_entry', ['township_code'], unique=False)
    op.create_table('temporary_aid_approval',
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('approved_total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('approved_by', sa.String(length=64), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=False),
    sa.Column('basis', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("level IN ('TOWNSHIP', 'COUNTY', 'CASE_CONFERENCE')", name=op.f('ck_temporary_aid_approval_level_enum')),
    sa.CheckConstraint('approved_total > 0', name=op.f('ck_temporary_aid_approval_total_positive')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_temporary_aid_approval_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('enrollment_id', name=op.f('pk_temporary_aid_approval'))
    )
    op.create_table('temporary_aid_stage',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('from_reserve', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('payment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('STAGE', 'FOLLOW_UP')", name=op.f('ck_temporary_aid_stage_kind_enum')),
    sa.CheckConstraint("status IN ('SCHEDULED', 'PAID')", name=op.f('ck_temporary_aid_stage_status_enum')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_temporary_aid_stage_amount_positive')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['temporary_aid_approval.enrollment_id'], name=op.f('fk_temporary_aid_stage_enrollment_id_temporary_aid_approval'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_temporary_aid_stage_payment_id_payment'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_temporary_aid_stage'))
    )
    op.create_index(op.f('ix_temporary_aid_stage_enrollment_id'), 'temporary_aid_stage', ['enrollment_id'], unique=False)
    op.create_table('visit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('visited_on', sa.Date(), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('needs_help', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_visit_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_visit_lead_id_lead'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit'))
    )
    op.create_index(op.f('ix_visit_household_id'), 'visit', ['household_id'], unique=False)

    op.create_table('recovery_order',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('recovered', sa.Numeric(precision=14, scale=2), server_default=sa.text('0'), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('issued_by', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("status IN ('ISSUED', 'PARTIAL', 'RECOVERED', 'CANCELLED')", name=op.f('ck_recovery_order_status_enum')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_recovery_order_amount_positive')),
    sa.CheckConstraint('recovered >= 0 AND recovered <= amount', name=op.f('ck_recovery_order_recovered_within_amount')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_recovery_order_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_recovery_order_household_id_household'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_order'))
    )
    op.create_index(op.f('ix_recovery_order_enrollment_id'), 'recovery_order', ['enrollment_id'], unique=False)

    op.create_table('verification_consent',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('signed_by_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_ids', sa.JSON(), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('document_ref', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('valid_until >= signed_on', name=op.f('ck_verification_consent_valid_period')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_verification_consent_enrollment_id_enrollment'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_verification_consent_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['signed_by_person_id'], ['person.id'], name=op.f('fk_verification_consent_signed_by_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verification_consent'))
    )
    op.create_index(op.f('ix_verification_consent_household_id'), 'verification_consent', ['household_id'], unique=False)
    op.create_table('economic_verification',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('authorisation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('verified_by', sa.String(length=64), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['authorisation_id'], ['verification_consent.id'], name=op.f('fk_economic_verification_authorisation_id_verification_consent'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_economic_verification_household_id_household'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_economic_verification'))
    )
    op.create_index(op.f('ix_economic_verification_household_id'), 'economic_verification', ['household_id'], unique=False)

    op.create_table('charity_resource',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('project', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('remaining', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('MONEY', 'SERVICE')", name=op.f('ck_charity_resource_kind_enum')),
    sa.CheckConstraint('remaining IS NULL OR remaining >= 0', name=op.f('ck_charity_resource_remaining_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charity_resource'))
    )
    op.create_table('service_provider',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('budget', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('SOCIAL_WORK_ORG', 'PURCHASED_PROJECT', 'OTHER')", name=op.f('ck_service_provider_kind_enum')),
    sa.CheckConstraint('period_end IS NULL OR period_start IS NULL OR period_end >= period_start', name=op.f('ck_service_provider_valid_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_provider'))
    )
    op.create_table('charity_match',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('resource_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('matched_by', sa.String(length=64), nullable=False),
    sa.Column('matched_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_charity_match_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_id'], ['charity_resource.id'], name=op.f('fk_charity_match_resource_id_charity_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_charity_match'))
    )
    op.create_index(op.f('ix_charity_match_household_id'), 'charity_match', ['household_id'], unique=False)
    op.create_index(op.f('ix_charity_match_resource_id'), 'charity_match', ['resource_id'], unique=False)
    op.create_table('service_order',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('service', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('visits', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_visit_on', sa.Date(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("status IN ('OPEN', 'IN_PROGRESS', 'DONE', 'CANCELLED')", name=op.f('ck_service_order_status_enum')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_service_order_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_service_order_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_id'], ['service_provider.id'], name=op.f('fk_service_order_provider_id_service_provider')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_order'))
    )
    op.create_index(op.f('ix_service_order_household_id'), 'service_order', ['household_id'], unique=False)
    op.create_index('ix_service_order_region_status', 'service_order', ['region_code', 'status'], unique=False)


def downgrade() -> None:
    op.drop_table('charity_match')
    op.drop_table('charity_resource')
    op.drop_table('service_order')
    op.drop_table('service_provider')
    op.drop_table('economic_verification')
    op.drop_table('verification_consent')
    op.drop_table('recovery_order')
    op.drop_table('visit')
    op.drop_table('temporary_aid_stage')
    op.drop_table('temporary_aid_approval')
    op.drop_table('reserve_fund_entry')
    op.drop_table('lead')
    op.drop_table('referral')
    op.drop_table('reserve_fund')
