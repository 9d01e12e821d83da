-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2
--
-- The GC test's way to keep a pass running: lock every table of the index
-- but schema_migrations (which `registry gc` reads to check the schema
-- before it tries the cluster-wide GC lock), then hold the locks. A pass
-- that took the GC lock then waits on its first query, so a second
-- `registry gc` started meanwhile finds the lock taken. The test ends the
-- hold with pg_terminate_backend on this session (application_name
-- hold-tables); the sleep is only a bound.
BEGIN;
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'
    LOOP
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', t);
    END LOOP;
END
$$;
SELECT pg_sleep(1800);
