"""Saved policy simulations (simulation_scenario): name, changes, who, when, and the result's summary.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'simulation_scenario',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('province_code', sa.String(length=2), nullable=False),
        sa.Column('region_code', sa.String(length=12), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_simulation_scenario')),
        sa.UniqueConstraint('province_code', 'name', name='uq_simulation_scenario_province_name'),
    )


def downgrade() -> None:
    op.drop_table('simulation_scenario')
