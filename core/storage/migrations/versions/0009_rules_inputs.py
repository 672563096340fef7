"""Rule inputs (issue 11): what the sources' rules decide on and the platform did not store.

person: the school's hardship recognition as the grant tier (家庭经济困难学生认定, GS-2024 / GD-2024), the
year of study (新生, GD-2024's freshman grant), veteran students (退役士兵学生, GS-2024 3,300), the certified
employment-difficulty level (就业困难人员分级帮扶, GD-2021 / GD-2024) and the registration date of a business
(GS-2024 entrepreneurship subsidy after one year), a person-level aid category recognised by another
department (孤儿、事实无人抚养儿童; 农村返贫致贫人口、过渡期内的已脱贫人口、稳定脱贫人口). household: housing difficulty (住房困难, GD-2021).
emergency_event: the emergency itself, with kind, place and date (GD-2021 §15: aid where it happens), and the
explanation due after aid first (先行救助，事后补充说明情况).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('person', sa.Column('school_hardship_tier', sa.SmallInteger(), nullable=True))
    op.add_column('person', sa.Column('school_year', sa.SmallInteger(), nullable=True))
    op.add_column('person', sa.Column('veteran_student', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))
    op.add_column('person', sa.Column('employment_difficulty_level', sa.SmallInteger(), nullable=True))
    op.add_column('person', sa.Column('business_registered_on', sa.Date(), nullable=True))
    op.add_column('person', sa.Column('special_category', sa.String(length=32), nullable=True))
    op.add_column('household', sa.Column('housing_need', sa.Boolean(), server_default=sa.text('false'),
                                         nullable=False))
    op.create_table(
        'emergency_event',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('household_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('occurred_on', sa.Date(), nullable=False),
        sa.Column('explanation_due', sa.Date(), nullable=True),
        sa.Column('explained_on', sa.Date(), nullable=True),
        sa.Column('explanation', sa.Text(), nullable=True),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.Column('recorded_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_emergency_event_household_id_household'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_emergency_event_person_id_person'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_event')),
    )
    op.create_index('ix_emergency_event_household_occurred', 'emergency_event', ['household_id', 'occurred_on'])
    op.create_index('ix_emergency_event_region_code', 'emergency_event', ['region_code'])


def downgrade() -> None:
    op.drop_index('ix_emergency_event_region_code', table_name='emergency_event')
    op.drop_index('ix_emergency_event_household_occurred', table_name='emergency_event')
    op.drop_table('emergency_event')
    with op.batch_alter_table('household') as batch:
        batch.drop_column('housing_need')
    with op.batch_alter_table('person') as batch:
        for column in ('special_category', 'business_registered_on', 'employment_difficulty_level', 'veteran_student', 'school_year',
                       'school_hardship_tier'):
            batch.drop_column(column)
