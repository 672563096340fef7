"""Payments by installment: two temporary-aid stages due in the same month are two payments (issue 13).

``payment`` was unique per (enrolment, period), so a case approved once and aided in stages (一次审批、分阶段救助)
or given follow-up aid (跟进救助) could not be paid twice in one month, although the sources (GD-2021 §15) set no
such limit. The new column ``installment`` says which of the period's payments a row is: ``REGULAR`` for the
period's regular payment (every existing row; the monthly run's and a one-off decision's, still one per enrolment
and period, so the monthly run stays idempotent) and ``STAGE-<stage id>`` for a stage's payment; the unique
constraint becomes (enrolment, period, installment).

Downgrading goes back to one payment per enrolment and period. A payment is a record of money paid and is never
deleted by a migration: when an enrolment has more than one payment in a period, the downgrade refuses, naming
them, and nothing is changed.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment") as batch:
        batch.add_column(sa.Column("installment", sa.String(length=32), nullable=False,
                                   server_default="REGULAR"))
        batch.drop_constraint("uq_payment_enrollment_period", type_="unique")
        batch.create_unique_constraint("uq_payment_enrollment_period_installment",
                                       ["enrollment_id", "period", "installment"])


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT enrollment_id, period, count(*) FROM payment GROUP BY enrollment_id, period HAVING count(*) > 1 "
        "ORDER BY enrollment_id, period")).all()
    if shared:
        listed = ", ".join(f"enrolment {e} in {p} ({n} payments)" for e, p, n in shared[:10])
        raise RuntimeError(f"cannot downgrade below 0016: {len(shared)} enrolment period(s) hold more than one "
                           f"payment, which the older schema cannot hold ({listed}); payments are never deleted "
                           "by a migration")
    with op.batch_alter_table("payment") as batch:
        batch.drop_constraint("uq_payment_enrollment_period_installment", type_="unique")
        batch.create_unique_constraint("uq_payment_enrollment_period", ["enrollment_id", "period"])
        batch.drop_column("installment")
