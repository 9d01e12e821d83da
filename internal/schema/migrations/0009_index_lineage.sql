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

-- The history the index is on now, so that a failover before the first
-- garbage collection pass is found too. The timeline is the one the
-- current WAL file is named with; the system identifier is filled in by
-- the first pass whose role may read it.
INSERT INTO index_lineage (timeline, wal_lsn)
SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint, pg_current_wal_lsn();
