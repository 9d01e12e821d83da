-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Garbage collection's memory between passes (package gc). Expand only:
-- new tables that no other code reads, so the previous release serves on
-- this schema unchanged. Nothing here references the index tables: a mark
-- is a note, never a reason to keep or refuse a row, and every pass
-- removes the marks whose rows are gone or referenced again.

-- When a pass first found a manifest unreachable from every tag, or a
-- repository's blob link referenced by no manifest of it. The row is
-- removed only once it has stayed so for the grace period. Blobs have no
-- marks: a blob without links or manifests is invisible to clients.
CREATE TABLE gc_unreferenced (
    kind          text NOT NULL CHECK (kind IN ('manifest', 'blob-link')),
    repository_id bigint NOT NULL,
    digest        text NOT NULL,
    since         timestamptz NOT NULL,
    PRIMARY KEY (kind, repository_id, digest)
);

-- Bucket keys a pass listed that the index does not know. A key is
-- deleted only when a later pass lists it again, still unknown, at least
-- the grace period after it was first seen: a listing proves that an
-- object exists, never that a push writing it has failed.
CREATE TABLE gc_unknown_objects (
    key        text PRIMARY KEY,
    first_seen timestamptz NOT NULL
);

-- A blob may go only when no manifest of any repository is it; the
-- primary key (repository_id, digest) cannot answer that by digest.
-- Building it blocks manifest writes for as long as it takes, once, when
-- this release first migrates (see docs/gc.md for a measured figure).
CREATE INDEX manifests_digest ON manifests (digest);
