"""PostgreSQL row-level security (行级安全) on every person-bearing table: the second line behind the scope predicate.

Creates the application role ``aidgraph_app`` (NOLOGIN, owns nothing, DML on every table and sequence, also on
tables later migrations make), two functions that read the transaction's scope setting ``aidgraph.scope``
(``aidgraph_scope_prefixes()``: the region-code prefixes; ``aidgraph_scope_unrestricted()``: the system scope
``*``), and one policy per person-bearing table that admits a row only inside that scope. A transaction
that set no scope admits nothing. See :mod:`aidgraph.core.storage.rls` for why and how the server uses it.

A table with a region column is filtered on it; a table without one through its parent's key (household,
person or enrolment), with an ``EXISTS`` on the parent's primary key, itself filtered by the parent's region.
``audit_log`` is append-only for the application: it may add rows anywhere (an audit row of a refused or
global action still has to be written), read those in scope and those without a region (logins, logouts,
password changes: no region's data; the application's own predicate shows them to unrestricted auditors only),
and seal unsealed rows it can read (the hash chain of aidgraph.core.graph.audit is written at commit: only the
three chain columns of a row whose ``seq`` is still empty); it never changes a sealed row or deletes one. A row a
request wrote outside its regions stays unsealed until a wider transaction seals it (``aidgraph audit seal``). The policies are
not FORCEd: the tables' owner is the system (migrations, CLI commands, the seeder, the monitoring run and the
search indexer), which has no caller to be scoped to.

SQLite has no row-level security: this revision does nothing there (the application's predicate is the only
line).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 10:20:00
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ROLE = "aidgraph_app"

UNRESTRICTED = "(SELECT aidgraph_scope_unrestricted())"


def in_scope(column: str) -> str:
    """``column`` (a region code) lies under a prefix of the transaction's scope; InitPlans read it once."""
    return f"({UNRESTRICTED} OR {column}::text ^@ ANY ((SELECT aidgraph_scope_prefixes())::text[]))"


def parent_in_scope(parent: str, key: str, column: str = "region_code") -> str:
    return f"({UNRESTRICTED} OR EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {key} AND {in_scope('p.' + column)}))"


def emergency_here(household_key: str) -> str:
    """The household has an emergency (急难) recorded at a place in scope: 由急难发生地实施临时救助 (GD-2021) lets
    the officers of that place act for a household registered elsewhere, which the application allows; the
    second line must not hide that household from them. The households are listed once per statement by a
    SECURITY DEFINER function (an InitPlan, evaluated only for rows outside the caller's regions), not by a
    subquery per row."""
    return f"{household_key} = ANY ((SELECT aidgraph_emergency_households())::bigint[])"


def household_reach(key: str) -> str:
    """A row keyed by household ``key``: its household is in scope, or has an emergency recorded in scope."""
    return f"({parent_in_scope('household', key)} OR {emergency_here(key)})"


REGION_TABLES = (
    "household", "person", "enrollment", "alert", "emergency_event", "referral", "lead", "visit", "recovery_order",
    "service_order", "charity_match", "eligibility_decision", "retained_record",
    "volunteer", "volunteer_assignment",  # 0017: a volunteer's name and phone; an assignment names a household
)
"""Tables with their own region code (the owning region for data scope)."""
HOUSEHOLD_TABLES = (
    "membership", "economic_item", "payment", "aid_chain_event", "verification_consent", "economic_verification",
)
"""Tables keyed by household (``household_id``)."""
ENROLLMENT_TABLES = ("enrollment_step", "temporary_aid_approval", "temporary_aid_stage")
"""Tables keyed by enrolment (``enrollment_id``)."""

POLICIES: dict[str, str] = {
    **{t: in_scope(f"{t}.region_code") for t in REGION_TABLES},
    **{t: household_reach(f"{t}.household_id") for t in HOUSEHOLD_TABLES},
    "household": f"({in_scope('household.region_code')} OR {emergency_here('household.id')})",
    "person": f"({in_scope('person.region_code')} OR person.id = ANY ((SELECT aidgraph_emergency_persons())::bigint[]))",
    **{t: parent_in_scope("enrollment", f"{t}.enrollment_id") for t in ENROLLMENT_TABLES},
    "feed_record": parent_in_scope("person", "feed_record.person_id"),
    # an edge is the business of either end: shown with a visible person (the other end stays as it is)
    "relationship": f"({parent_in_scope('person', 'relationship.from_person_id')} OR "
                    f"{parent_in_scope('person', 'relationship.to_person_id')})",
}
"""The policy expression of every person-bearing table (``USING`` and ``WITH CHECK``)."""
AUDIT_READ = (f"({in_scope('audit_log.region_code')} OR "
              "audit_log.actor = current_setting('aidgraph.scope_reason', true))")
"""Audit rows in scope, or written by the caller (whose username the request's ``aidgraph.scope_reason`` holds):
an INSERT ... RETURNING must see the row it adds, and a planner's simulation of a city outside their own, or an
officer's action at an emergency's place, is audited in that region."""
POLICY = "aidgraph_scope"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
            IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
                EXECUTE format('GRANT {ROLE} TO %I', current_user);
            END IF;
        END
        $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {ROLE}")
    op.execute("""
        CREATE FUNCTION aidgraph_scope_prefixes() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN s IS NULL OR s = '' OR s = '*' THEN '{}'::text[] ELSE string_to_array(s, ',') END
            FROM (SELECT current_setting('aidgraph.scope', true) AS s) AS setting
        $$""")
    op.execute("""
        CREATE FUNCTION aidgraph_scope_unrestricted() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT coalesce(current_setting('aidgraph.scope', true) = '*', false)
        $$""")
    # Owned by the migrating (owner) role and SECURITY DEFINER: they read emergency_event and membership unbound
    # by the policies, with the transaction's scope setting, once per statement.
    op.execute("""
        CREATE FUNCTION aidgraph_emergency_households() RETURNS bigint[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public AS $$
            SELECT coalesce(array_agg(DISTINCT e.household_id), '{}'::bigint[]) FROM emergency_event e
            WHERE aidgraph_scope_unrestricted() OR e.region_code::text ^@ ANY (aidgraph_scope_prefixes())
        $$""")
    op.execute("""
        CREATE FUNCTION aidgraph_emergency_persons() RETURNS bigint[] LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = public AS $$
            SELECT coalesce(array_agg(DISTINCT m.person_id), '{}'::bigint[]) FROM membership m
            WHERE m.valid_to IS NULL AND m.household_id = ANY (aidgraph_emergency_households())
        $$""")
    for table, expression in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} TO {ROLE} USING {expression} WITH CHECK {expression}")
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {POLICY}_read ON audit_log FOR SELECT TO {ROLE} USING ({AUDIT_READ} OR region_code IS NULL)")
    op.execute(f"CREATE POLICY {POLICY}_append ON audit_log FOR INSERT TO {ROLE} WITH CHECK (true)")
    op.execute(f"CREATE POLICY {POLICY}_seal ON audit_log FOR UPDATE TO {ROLE} USING (seq IS NULL) WITH CHECK (true)")
    op.execute(f"REVOKE UPDATE, DELETE ON audit_log FROM {ROLE}")
    op.execute(f"GRANT UPDATE (seq, prev_hash, row_hash) ON audit_log TO {ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP POLICY IF EXISTS {POLICY}_read ON audit_log")
    op.execute(f"DROP POLICY IF EXISTS {POLICY}_append ON audit_log")
    op.execute(f"DROP POLICY IF EXISTS {POLICY}_seal ON audit_log")
    op.execute("ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY")
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_emergency_persons()")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_emergency_households()")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_scope_unrestricted()")
    op.execute("DROP FUNCTION IF EXISTS aidgraph_scope_prefixes()")
    # the role is cluster-wide (other databases may use it): its grants here go, the role stays
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
