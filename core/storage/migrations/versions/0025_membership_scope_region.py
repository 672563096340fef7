"""Membership rows carry their household's region for the row-level policy (PostgreSQL): no per-row ``EXISTS``.

Why: the policy of 0018 admitted a ``membership`` row through an ``EXISTS`` on its household, one index probe
of ``household`` for every membership row a statement reads. Every list page reads the memberships of each of
its households twice (the member count and the head), so that probe was the largest part of what row-level
security added to the list page (issue 12 item 15, bench/bench_api.py ``--rls-compare``).

What it adds, on PostgreSQL only (SQLite has no row-level security):

- ``membership.rls_region_code``: the region code of the row's household, a copy kept by the database for the
  policy and for nothing else (the application never reads or writes it, and the models do not map it; the
  models-match-migrations comparison skips it: :data:`aidgraph.core.storage.rls.POLICY_COLUMNS`).
- The copy has one writer, the database: a ``BEFORE INSERT OR UPDATE`` row trigger sets it from the household
  on every insert and on every update of ``household_id`` or of the copy itself (a value sent by anyone is
  overwritten), and an ``AFTER UPDATE OF region_code`` trigger on ``household`` rewrites the copies of a
  household whose region changes. Both functions are ``SECURITY DEFINER`` (owned by the migrating role): they
  read the household's true region whatever the writer may see; whether the writer may write the row is then
  the policy's decision, as before.
- The policy of ``membership`` becomes the household tables' policy with the copy in place of the ``EXISTS``:
  in the caller's regions, or a household with an emergency recorded there (急难发生地, see 0018).

Cost: one indexed lookup of ``household`` per membership row written (the seeder's COPY included).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 18:20:00
"""

from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

ROLE = "aidgraph_app"
POLICY = "aidgraph_scope"
UNRESTRICTED = "(SELECT aidgraph_scope_unrestricted())"


def _in_scope(column: str) -> str:
    return f"({UNRESTRICTED} OR {column}::text ^@ ANY ((SELECT aidgraph_scope_prefixes())::text[]))"


EMERGENCY = "membership.household_id = ANY ((SELECT aidgraph_emergency_households())::bigint[])"
NEW_POLICY = f"({_in_scope('membership.rls_region_code')} OR {EMERGENCY})"
OLD_POLICY = (f"(({UNRESTRICTED} OR EXISTS (SELECT 1 FROM household p WHERE p.id = membership.household_id AND "
              f"{_in_scope('p.region_code')})) OR {EMERGENCY})")
"""0018's policy of ``membership``, restored by the downgrade."""


def _policy(expression: str) -> None:
    op.execute(f"DROP POLICY IF EXISTS {POLICY} ON membership")
    op.execute(f"CREATE POLICY {POLICY} ON membership TO {ROLE} USING {expression} WITH CHECK {expression}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE membership ADD COLUMN rls_region_code varchar(12)")
    op.execute("""
        CREATE FUNCTION aidgraph_membership_region() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public AS $$
        BEGIN
            NEW.rls_region_code := (SELECT h.region_code FROM household h WHERE h.id = NEW.household_id);
            RETURN NEW;
        END
        $$""")
    op.execute("CREATE TRIGGER membership_rls_region BEFORE INSERT OR UPDATE OF household_id, rls_region_code "
               "ON membership FOR EACH ROW EXECUTE FUNCTION aidgraph_membership_region()")
    op.execute("""
        CREATE FUNCTION aidgraph_household_region_moved() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public AS $$
        BEGIN
            UPDATE membership SET rls_region_code = NEW.region_code WHERE household_id = NEW.id;
            RETURN NULL;
        END
        $$""")
    op.execute("CREATE TRIGGER household_rls_region_moved AFTER UPDATE OF region_code ON household FOR EACH ROW "
               "WHEN (OLD.region_code IS DISTINCT FROM NEW.region_code) "
               "EXECUTE FUNCTION aidgraph_household_region_moved()")
    op.execute("UPDATE membership m SET rls_region_code = h.region_code FROM household h WHERE h.id = m.household_id")
    op.execute("ALTER TABLE membership ALTER COLUMN rls_region_code SET NOT NULL")
    _policy(NEW_POLICY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _policy(OLD_POLICY)
    op.execute("DROP TRIGGER IF EXISTS household_rls_region_moved ON household")
    op.execute("DROP TRIGGER IF EXISTS membership_rls_region ON membership")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_household_region_moved()")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_membership_region()")
    op.execute("ALTER TABLE membership DROP COLUMN IF EXISTS rls_region_code")
