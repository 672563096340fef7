"""Volunteer service (志愿服务; GD-2022 §13, issue 13): community volunteer stations, volunteers registered at them,
and their assignments to the tasks the source lists.

``volunteer_station`` (社区志愿服务站点) belongs to a township or village; ``volunteer`` holds a name, an encrypted
phone (like ``person.phone``) and the tasks offered; ``volunteer_assignment`` is one task for a visit (巡访), a
lead (对象排查), a household or a region, done with its result (a satisfaction survey's 满意 / 基本满意 / 不满意).
New tables only: downgrading drops them.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TASKS = ("'LEAD_SCREENING', 'INTAKE_ASSESSMENT', 'SATISFACTION_SURVEY', 'ECONOMIC_ASSESSMENT', 'CASE_FILE_VISIT', "
         "'POLICY_OUTREACH', 'CARE', 'REHABILITATION'")


def upgrade() -> None:
    op.create_table('volunteer_station',
    sa.Column('id', ID, nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], name=op.f('fk_volunteer_station_region_code_region')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer_station')),
    sa.UniqueConstraint('region_code', 'name', name='uq_volunteer_station_region_name'),
    )
    op.create_index(op.f('ix_volunteer_station_region_code'), 'volunteer_station', ['region_code'], unique=False)
    op.create_table('volunteer',
    sa.Column('id', ID, nullable=False),
    sa.Column('station_id', ID, nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('phone', sa.String(length=160), nullable=False),
    sa.Column('tasks', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('registered_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.ForeignKeyConstraint(['station_id'], ['volunteer_station.id'],
                            name=op.f('fk_volunteer_station_id_volunteer_station'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer')),
    )
    op.create_index(op.f('ix_volunteer_station_id'), 'volunteer', ['station_id'], unique=False)
    op.create_table('volunteer_assignment',
    sa.Column('id', ID, nullable=False),
    sa.Column('volunteer_id', ID, nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=False),
    sa.Column('task', sa.String(length=24), nullable=False),
    sa.Column('household_id', ID, nullable=True),
    sa.Column('visit_id', ID, nullable=True),
    sa.Column('lead_id', ID, nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('satisfaction', sa.String(length=20), nullable=True),
    sa.Column('assigned_by', sa.String(length=64), nullable=False),
    sa.Column('assigned_at', sa.DateTime(), nullable=False),
    sa.Column('completed_by', sa.String(length=64), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
    sa.CheckConstraint(f"task IN ({TASKS})", name=op.f('ck_volunteer_assignment_task_enum')),
    sa.CheckConstraint("status IN ('ASSIGNED', 'DONE', 'CANCELLED')", name=op.f('ck_volunteer_assignment_status_enum')),
    sa.CheckConstraint("satisfaction IS NULL OR (satisfaction IN ('SATISFIED', 'PARTLY_SATISFIED', 'DISSATISFIED') "
                       "AND task = 'SATISFACTION_SURVEY' AND status = 'DONE')",
                       name=op.f('ck_volunteer_assignment_satisfaction_of_survey')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'],
                            name=op.f('fk_volunteer_assignment_household_id_household'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_volunteer_assignment_lead_id_lead'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_volunteer_assignment_visit_id_visit'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteer.id'],
                            name=op.f('fk_volunteer_assignment_volunteer_id_volunteer'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer_assignment')),
    )
    op.create_index('ix_volunteer_assignment_region_status', 'volunteer_assignment', ['region_code', 'status'],
                    unique=False)
    op.create_index(op.f('ix_volunteer_assignment_volunteer_id'), 'volunteer_assignment', ['volunteer_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_volunteer_assignment_volunteer_id'), table_name='volunteer_assignment')
    op.drop_index('ix_volunteer_assignment_region_status', table_name='volunteer_assignment')
    op.drop_table('volunteer_assignment')
    op.drop_index(op.f('ix_volunteer_station_id'), table_name='volunteer')
    op.drop_table('volunteer')
    op.drop_index(op.f('ix_volunteer_station_region_code'), table_name='volunteer_station')
    op.drop_table('volunteer_station')
