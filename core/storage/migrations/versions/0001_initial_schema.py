"""Initial schema: the region tree, persons, households, memberships, relationships, economic items, and the
enrolment, payment, feed, alert, aid-chain, audit, outbox, idempotency, user and Casbin tables later work fills.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 13:23:25.227057
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=24), nullable=False),
    sa.Column('object_id', sa.String(length=40), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('casbin_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ptype', sa.String(length=255), nullable=False),
    sa.Column('v0', sa.String(length=255), nullable=True),
    sa.Column('v1', sa.String(length=255), nullable=True),
    sa.Column('v2', sa.String(length=255), nullable=True),
    sa.Column('v3', sa.String(length=255), nullable=True),
    sa.Column('v4', sa.String(length=255), nullable=True),
    sa.Column('v5', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_casbin_rule'))
    )
    op.create_table('idempotency_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_record')),
    sa.UniqueConstraint('actor', 'operation', 'key', name='uq_idempotency_actor_operation_key')
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity', sa.String(length=12), nullable=False),
    sa.Column('entity_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('deleted', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("entity IN ('PERSON', 'HOUSEHOLD', 'ENROLLMENT', 'ALERT')", name=op.f('ck_outbox_entity_enum')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['id'], unique=False, sqlite_where=sa.text('processed_at IS NULL'), postgresql_where=sa.text('processed_at IS NULL'))

    op.create_table('person',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('hukou_region_code', sa.String(length=6), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=True),
    sa.Column('disability_category', sa.String(length=20), nullable=True),
    sa.Column('disability_level', sa.SmallInteger(), nullable=True),
    sa.Column('chronic_disease', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('major_disease', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('hospitalised', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('labour_capacity', sa.String(length=8), nullable=True),
    sa.Column('employment_status', sa.String(length=20), nullable=True),
    sa.Column('student_stage', sa.String(length=14), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('death_date', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("employment_status IS NULL OR employment_status IN ('EMPLOYED', 'UNEMPLOYED', 'NOT_IN_LABOUR_FORCE', 'STUDENT', 'RETIRED')", name=op.f('ck_person_employment_status_enum')),
    sa.CheckConstraint("labour_capacity IS NULL OR labour_capacity IN ('FULL', 'PARTIAL', 'NONE')", name=op.f('ck_person_labour_capacity_enum')),
    sa.CheckConstraint("sex IN ('MALE', 'FEMALE')", name=op.f('ck_person_sex_enum')),
    sa.CheckConstraint('disability_level IS NULL OR disability_level BETWEEN 1 AND 4', name=op.f('ck_person_disability_level_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('id_number', name=op.f('uq_person_id_number'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index('ix_person_region_id', ['region_code', 'id'], unique=False)

    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('(true)'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_app_user_person_id_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_table('region',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.CheckConstraint("level IN ('PROVINCE', 'CITY', 'COUNTY', 'TOWNSHIP', 'VILLAGE')", name=op.f('ck_region_level_enum')),
    sa.ForeignKeyConstraint(['parent_code'], ['region.code'], name=op.f('fk_region_parent_code_region')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_region'))
    )
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_region_parent_code'), ['parent_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_region_province_code'), ['province_code'], unique=False)

    op.create_table('feed_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_date', sa.Date(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('row_hash', sa.String(length=64), nullable=False),
    sa.Column('source_file', sa.String(length=255), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_feed_record_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_record')),
    sa.UniqueConstraint('row_hash', name=op.f('uq_feed_record_row_hash'))
    )
    with op.batch_alter_table('feed_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_record_event_date'), ['event_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_record_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_record_person_id'), ['person_id'], unique=False)

    op.create_table('household',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_number', sa.String(length=24), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], name=op.f('fk_household_region_code_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household')),
    sa.UniqueConstraint('household_number', name=op.f('uq_household_household_number'))
    )
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index('ix_household_region_id', ['region_code', 'id'], unique=False)

    op.create_table('relationship',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('to_person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.CheckConstraint("kind IN ('SPOUSE', 'PARENT', 'GUARDIAN', 'SUPPORT_OBLIGOR')", name=op.f('ck_relationship_kind_enum')),
    sa.CheckConstraint('from_person_id <> to_person_id', name=op.f('ck_relationship_not_self')),
    sa.ForeignKeyConstraint(['from_person_id'], ['person.id'], name=op.f('fk_relationship_from_person_id_person'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_person_id'], ['person.id'], name=op.f('fk_relationship_to_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationship')),
    sa.UniqueConstraint('from_person_id', 'to_person_id', 'kind', 'valid_from', name='uq_relationship_edge')
    )
    with op.batch_alter_table('relationship', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relationship_from_person_id'), ['from_person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_relationship_to_person_id'), ['to_person_id'], unique=False)

    op.create_table('aid_chain_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=14), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('program_key', sa.String(length=40), nullable=True),
    sa.Column('ref_type', sa.String(length=24), nullable=True),
    sa.Column('ref_id', sa.BigInteger(), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.CheckConstraint("kind IN ('APPLICATION', 'DECISION', 'PAYMENT', 'ALERT', 'REFERRAL', 'VERIFICATION', 'MEMBERSHIP')", name=op.f('ck_aid_chain_event_kind_enum')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_aid_chain_event_household_id_household'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aid_chain_event'))
    )
    with op.batch_alter_table('aid_chain_event', schema=None) as batch_op:
        batch_op.create_index('ix_aid_chain_household_at', ['household_id', 'at', 'id'], unique=False)

    op.create_table('alert',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('indicators', sa.JSON(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('disposition', sa.String(length=24), nullable=True),
    sa.Column('disposition_note', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint("level IN ('RED', 'ORANGE', 'YELLOW', 'BLUE', 'GREEN')", name=op.f('ck_alert_level_enum')),
    sa.CheckConstraint("status IN ('OPEN', 'VERIFYING', 'RESOLVED', 'DISMISSED')", name=op.f('ck_alert_status_enum')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_alert_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_alert_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['township_code'], ['region.code'], name=op.f('fk_alert_township_code_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert'))
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_alert_region_status_level', ['region_code', 'status', 'level'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_township_code'), ['township_code'], unique=False)
        batch_op.create_index('uq_alert_one_open_per_household', ['household_id'], unique=True, sqlite_where=sa.text("status IN ('OPEN', 'VERIFYING')"), postgresql_where=sa.text("status IN ('OPEN', 'VERIFYING')"))

    op.create_table('economic_item',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("kind IN ('WAGE', 'BUSINESS', 'PROPERTY_INCOME', 'TRANSFER', 'PENSION', 'EXPENDITURE_MEDICAL', 'EXPENDITURE_EDUCATION', 'DEPOSIT', 'SECURITIES', 'REAL_ESTATE', 'VEHICLE')", name=op.f('ck_economic_item_kind_enum')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_economic_item_amount_not_negative')),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_economic_item_valid_period')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_economic_item_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_economic_item_person_id_person'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_economic_item'))
    )
    with op.batch_alter_table('economic_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_economic_item_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_economic_item_person_id'), ['person_id'], unique=False)

    op.create_table('enrollment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('program_key', sa.String(length=40), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=True),
    sa.Column('monthly_amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('applied_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('gradual_exit_until', sa.Date(), nullable=True),
    sa.Column('next_review_date', sa.Date(), nullable=True),
    sa.Column('transferred_from_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('APPLIED', 'VERIFYING', 'REVIEWED', 'APPROVED', 'ACTIVE', 'GRADUAL_EXIT', 'ENDED', 'REJECTED', 'WITHDRAWN')", name=op.f('ck_enrollment_status_enum')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_enrollment_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_enrollment_person_id_person'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['transferred_from_id'], ['enrollment.id'], name=op.f('fk_enrollment_transferred_from_id_enrollment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment'))
    )
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_enrollment_household_program', ['household_id', 'program_key', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrollment_program_key'), ['program_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrollment_region_code'), ['region_code'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('relation_to_head', sa.String(length=12), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.CheckConstraint("relation_to_head IN ('SELF', 'SPOUSE', 'CHILD', 'PARENT', 'GRANDCHILD', 'GRANDPARENT', 'SIBLING', 'OTHER')", name=op.f('ck_membership_relation_to_head_enum')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_membership_valid_period')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_membership_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_membership_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index('ix_membership_household_current', ['household_id', 'valid_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_person_id'), ['person_id'], unique=False)
        batch_op.create_index('uq_membership_one_current_head', ['household_id'], unique=True, sqlite_where=sa.text("relation_to_head = 'SELF' AND valid_to IS NULL"), postgresql_where=sa.text("relation_to_head = 'SELF' AND valid_to IS NULL"))
        batch_op.create_index('uq_membership_one_current_household', ['person_id'], unique=True, sqlite_where=sa.text('valid_to IS NULL'), postgresql_where=sa.text('valid_to IS NULL'))

    op.create_table('enrollment_step',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('from_status', sa.String(length=14), nullable=True),
    sa.Column('to_status', sa.String(length=14), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('actor_region_code', sa.String(length=12), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_enrollment_step_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_step'))
    )
    with op.batch_alter_table('enrollment_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrollment_step_enrollment_id'), ['enrollment_id'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_payment_amount_not_negative')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'], name=op.f('fk_payment_enrollment_id_enrollment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_payment_household_id_household'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('enrollment_id', 'period', name='uq_payment_enrollment_period')
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_enrollment_id'), ['enrollment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_household_id'), ['household_id'], unique=False)

    op.create_table('medical_claim',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('province_code', sa.String(length=2), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('admission_date', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('major_disease', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('compliant_cost', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('insurance_paid', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('deductible_applied', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('aid_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('secondary_aid_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('out_of_pocket', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=False),
    sa.Column('settled_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint('compliant_cost >= 0 AND insurance_paid >= 0', name=op.f('ck_medical_claim_amounts_not_negative')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_medical_claim_household_id_household'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_medical_claim_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medical_claim'))
    )
    with op.batch_alter_table('medical_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_medical_claim_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_medical_claim_region_code'), ['region_code'], unique=False)





def downgrade() -> None:
    op.drop_table('app_user')
    with op.batch_alter_table('medical_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_medical_claim_region_code'))
        batch_op.drop_index(batch_op.f('ix_medical_claim_person_id'))

    op.drop_table('medical_claim')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_household_id'))
        batch_op.drop_index(batch_op.f('ix_payment_enrollment_id'))

    op.drop_table('payment')
    with op.batch_alter_table('enrollment_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_step_enrollment_id'))

    op.drop_table('enrollment_step')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index('uq_membership_one_current_household', sqlite_where=sa.text('valid_to IS NULL'), postgresql_where=sa.text('valid_to IS NULL'))
        batch_op.drop_index('uq_membership_one_current_head', sqlite_where=sa.text("relation_to_head = 'SELF' AND valid_to IS NULL"), postgresql_where=sa.text("relation_to_head = 'SELF' AND valid_to IS NULL"))
        batch_op.drop_index(batch_op.f('ix_membership_person_id'))
        batch_op.drop_index('ix_membership_household_current')

    op.drop_table('membership')
    with op.batch_alter_table('enrollment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrollment_region_code'))
        batch_op.drop_index(batch_op.f('ix_enrollment_program_key'))
        batch_op.drop_index('ix_enrollment_household_program')
        batch_op.drop_index(batch_op.f('ix_enrollment_household_id'))

    op.drop_table('enrollment')
    with op.batch_alter_table('economic_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_economic_item_person_id'))
        batch_op.drop_index(batch_op.f('ix_economic_item_household_id'))

    op.drop_table('economic_item')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('uq_alert_one_open_per_household', sqlite_where=sa.text("status IN ('OPEN', 'VERIFYING')"), postgresql_where=sa.text("status IN ('OPEN', 'VERIFYING')"))
        batch_op.drop_index(batch_op.f('ix_alert_township_code'))
        batch_op.drop_index('ix_alert_region_status_level')
        batch_op.drop_index(batch_op.f('ix_alert_household_id'))

    op.drop_table('alert')
    with op.batch_alter_table('aid_chain_event', schema=None) as batch_op:
        batch_op.drop_index('ix_aid_chain_household_at')

    op.drop_table('aid_chain_event')
    with op.batch_alter_table('relationship', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relationship_to_person_id'))
        batch_op.drop_index(batch_op.f('ix_relationship_from_person_id'))

    op.drop_table('relationship')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_index('ix_household_region_id')

    op.drop_table('household')
    with op.batch_alter_table('feed_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_record_person_id'))
        batch_op.drop_index(batch_op.f('ix_feed_record_kind'))
        batch_op.drop_index(batch_op.f('ix_feed_record_event_date'))

    op.drop_table('feed_record')
    with op.batch_alter_table('region', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_region_province_code'))
        batch_op.drop_index(batch_op.f('ix_region_parent_code'))

    op.drop_table('region')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index('ix_person_region_id')

    op.drop_table('person')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending', sqlite_where=sa.text('processed_at IS NULL'), postgresql_where=sa.text('processed_at IS NULL'))

    op.drop_table('outbox')
    op.drop_table('idempotency_record')
    op.drop_table('casbin_rule')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor'))

    op.drop_table('audit_log')

