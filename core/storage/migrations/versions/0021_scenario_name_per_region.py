"""Simulation scenario names are unique per region, not per province.

With one name per province, a city planner saving "+8%" was refused when another city (or the province) had
kept a scenario of that name: the refusal told the planner that a scenario outside their scope exists and what
it is called. A scenario's region always lies in its author's scope, so uniqueness per (province, region, name)
refuses only names the planner can already read. Downgrading restores the per-province constraint and fails if
two regions have since kept the same name (rename one first).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 10:15:00
"""

from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("simulation_scenario") as batch:
        batch.drop_constraint("uq_simulation_scenario_province_name", type_="unique")
        batch.create_unique_constraint("uq_simulation_scenario_region_name", ["province_code", "region_code", "name"])


def downgrade() -> None:
    with op.batch_alter_table("simulation_scenario") as batch:
        batch.drop_constraint("uq_simulation_scenario_region_name", type_="unique")
        batch.create_unique_constraint("uq_simulation_scenario_province_name", ["province_code", "name"])
