-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Which PostgreSQL history the index belongs to (package rebuild,
-- lineage.go). Expand only: a new table that older binaries ignore.
--
-- A failover to an asynchronous standby, or a restore from a backup,
-- gives the index a past without the last commits, while the bucket still
-- holds what those commits indexed. Garbage collection records here the
-- cluster's system identifier, timeline and the newest WAL position a
-- pass saw; when they change or the position goes back, it stops deleting
-- until registry rebuild-db has indexed the bucket again on the new
-- history, which rebuild-db records here.
CREATE TABLE index_lineage (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- NULL when the registry's role may not read pg_control_system().
    system_identifier text,
    timeline          bigint NOT NULL,
    wal_lsn           pg_lsn NOT NULL,
    -- Why registry rebuild-db must run before garbage collection deletes
    -- again; NULL when it need not.
    rebuild_required  text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
