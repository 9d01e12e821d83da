-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Policy (package policy, docs/policy.md): quota figures and pull
-- statistics. Expand only: new tables, and an index, that older binaries
-- never read; the previous release serves on this schema unchanged. Like
-- the GC tables, neither holds anything registry rebuild-db must restore:
-- quota figures are recomputed from the index, and missing pull
-- statistics make retention keep a tag, never remove it.

-- The figures each quota of the policy file is enforced from, by its
-- match. A figure is an upper bound: a push adds what it stores under the
-- match's lock, and removals do not subtract. A push the figure would
-- refuse recomputes it exactly first, and so does any push once the
-- figure is older than the replicas' refresh interval.
CREATE TABLE quota_usage (
    match       text PRIMARY KEY,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    tags        bigint NOT NULL CHECK (tags >= 0),
    computed_at timestamptz NOT NULL
);

-- The last recorded pull of each manifest, by tag or digest. Replicas
-- write them in batches, never on a pull's own path.
CREATE TABLE manifest_pulls (
    repository_id  bigint NOT NULL,
    digest         text NOT NULL,
    last_pulled_at timestamptz NOT NULL,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests ON DELETE CASCADE
);

-- A quota's push check asks whether any repository under a namespace
-- already references a blob, by digest. Building it blocks manifest
-- writes for as long as it takes, once, when this release first migrates.
CREATE INDEX manifest_blobs_blob_digest ON manifest_blobs (blob_digest);
