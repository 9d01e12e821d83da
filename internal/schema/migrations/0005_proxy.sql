-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- The pull-through cache (internal/proxy, docs/proxy.md). Expand only:
-- new tables older binaries never touch. A manifest pulled through a
-- remote waits here until everything it references is cached; it then
-- becomes an ordinary manifest of its repository (in the bucket and the
-- index, so retention, GC and rebuild-db treat it like any other) and
-- leaves this table. What is only here is a cache: losing it costs a
-- pull from upstream, nothing else.

CREATE TABLE proxy_manifests (
    repository text NOT NULL,
    digest     text NOT NULL,
    media_type text NOT NULL,
    content    bytea NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository, digest)
);

-- Where upstream pointed a tag when last asked, and when that was: a tag
-- is served from here until the remote's tagRecheck has passed.
CREATE TABLE proxy_tags (
    repository text NOT NULL,
    tag        text NOT NULL,
    digest     text NOT NULL,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (repository, tag)
);

-- Pulls served from the cache (hits) and from upstream (misses), per
-- remote, added in batches by the replicas.
CREATE TABLE proxy_stats (
    remote text PRIMARY KEY,
    hits   bigint NOT NULL DEFAULT 0,
    misses bigint NOT NULL DEFAULT 0
);
