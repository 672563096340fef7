"""Idempotency fingerprints are keyed: the unkeyed ones stored before are removed.

``idempotency_record.request_hash`` fingerprints a mutation's input so that a reused key with another input is
refused. Before this revision it was a plain sha256 of the input's JSON, and a registration's input holds its
members' ID numbers: anyone reading the table could test candidate ID numbers against it. Fingerprints are now
HMACs under a key of the deployment (``aidgraph.core.storage.encrypted.request_hasher``). The old ones cannot
be converted (the input is not stored), so they are set to NULL: those keys are then replayed by the key alone,
as a key without a fingerprint always was. Downgrading clears the keyed ones the same way (an older release
computes unkeyed fingerprints, which would never match them).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE idempotency_record SET request_hash = NULL WHERE request_hash IS NOT NULL"))


def downgrade() -> None:
    upgrade()
