"""Search across records (跨记录检索): OpenSearch documents for persons, households, enrolments and alerts.

The database is the truth; the index only finds. Changes reach the index through the outbox (written in the
same transaction as the change) and the indexer that drains it in bulk with external versions; ``reindex``
rebuilds the whole index from the database behind an alias; ``verify`` compares and repairs. Every search
carries the caller's scope inside the OpenSearch query so that totals and facets are scoped too.

Modules: :mod:`.mapping` (index layout, owned by the core, extended by plugins), :mod:`.documents`
(set-at-a-time document builders), :mod:`.client` (connections and the unavailable error),
:mod:`.indexer` (outbox drain, background thread), :mod:`.rebuild` (reindex and verify), :mod:`.query`
(the Search operation), :mod:`.embedded` (the bundled osmem-server) and :mod:`.runtime` (server wiring).
"""
