"""Economic item kinds for the rest of GD-2021 §5's verification sources, and a recorded diagnosis.

GD-2021 §5 健全家庭经济状况核对机制 names 住房公积金缴存 … 商业保险、证券、互联网金融资产 among the information the
verification checks: ``economic_item.kind`` gains HOUSING_PROVIDENT_FUND (an asset, not a financial one),
COMMERCIAL_INSURANCE and INTERNET_FINANCE (financial assets, like deposits and securities). The CHECK constraint
is re-created on both engines (SQLite copies the table in batch mode).

``person.diagnosis`` / ``person.diagnosed_on``: a diagnosis another department recognised (GD-2021 §13
开展农村贫困妇女“两癌”救助: cervical or breast cancer), validated against the province's list when recorded.

SQLite rebuilds a table in batch mode (copy, drop, rename), which drops its triggers: the decision-stale
triggers of 0011 on ``economic_item`` (and ``person`` on downgrade) are read before and re-created after.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 10:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

OLD = ('WAGE', 'BUSINESS', 'PROPERTY_INCOME', 'TRANSFER', 'PENSION', 'EXPENDITURE_MEDICAL', 'EXPENDITURE_EDUCATION',
       'DEPOSIT', 'SECURITIES', 'REAL_ESTATE', 'VEHICLE')
NEW = OLD + ('HOUSING_PROVIDENT_FUND', 'COMMERCIAL_INSURANCE', 'INTERNET_FINANCE')


def _kinds(values: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _triggers(table: str) -> list[str]:
    """The CREATE TRIGGER statements on ``table`` (SQLite only: PostgreSQL alters the table in place)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return []
    return [row[0] for row in bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY name", (table,))]


def _restore(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    kept = _triggers("economic_item")
    with op.batch_alter_table("economic_item") as batch:
        batch.drop_constraint(op.f("ck_economic_item_kind_enum"), type_="check")
        batch.create_check_constraint("kind_enum", _kinds(NEW))
    _restore(kept)
    op.add_column('person', sa.Column('diagnosis', sa.String(length=24), nullable=True))
    op.add_column('person', sa.Column('diagnosed_on', sa.Date(), nullable=True))


def downgrade() -> None:
    kept = _triggers("person")
    with op.batch_alter_table("person") as batch:
        batch.drop_column('diagnosed_on')
        batch.drop_column('diagnosis')
    _restore(kept)
    op.execute("DELETE FROM economic_item WHERE kind IN ('HOUSING_PROVIDENT_FUND', 'COMMERCIAL_INSURANCE', "
               "'INTERNET_FINANCE')")
    kept = _triggers("economic_item")
    with op.batch_alter_table("economic_item") as batch:
        batch.drop_constraint(op.f("ck_economic_item_kind_enum"), type_="check")
        batch.create_check_constraint("kind_enum", _kinds(OLD))
    _restore(kept)
