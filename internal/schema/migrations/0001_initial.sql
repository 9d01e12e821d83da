-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- The metadata index. Everything here can be rebuilt from the bucket
-- (registry rebuild-db), except upload sessions, which are transient.

CREATE TABLE repositories (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Blob data objects in the bucket (layers, configs and manifest bytes),
-- by digest, shared by every repository.
CREATE TABLE blobs (
    digest     text PRIMARY KEY,
    size       bigint NOT NULL CHECK (size >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A repository may serve a blob only through a link (the bucket's
-- repositories/<name>/_layers/... link). RESTRICT: a blob row cannot go
-- while a repository links it.
CREATE TABLE repository_blobs (
    repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        text NOT NULL REFERENCES blobs (digest) ON DELETE RESTRICT,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- Manifests keep their bytes so a GET needs no bucket round trip.
CREATE TABLE manifests (
    repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        text NOT NULL REFERENCES blobs (digest) ON DELETE RESTRICT,
    media_type    text NOT NULL,
    artifact_type text NOT NULL DEFAULT '',
    content       bytea NOT NULL,
    subject       text,
    annotations   jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;

-- Config and layer references. RESTRICT on the repository link: a blob
-- link cannot be removed while a manifest of the repository needs it.
CREATE TABLE manifest_blobs (
    repository_id   bigint NOT NULL,
    manifest_digest text NOT NULL,
    blob_digest     text NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, blob_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests ON DELETE CASCADE,
    FOREIGN KEY (repository_id, blob_digest) REFERENCES repository_blobs (repository_id, digest) ON DELETE RESTRICT
);
CREATE INDEX manifest_blobs_blob ON manifest_blobs (repository_id, blob_digest);

-- Index entries. RESTRICT: a child cannot be deleted under its index.
CREATE TABLE manifest_children (
    repository_id bigint NOT NULL,
    parent_digest text NOT NULL,
    child_digest  text NOT NULL,
    PRIMARY KEY (repository_id, parent_digest, child_digest),
    FOREIGN KEY (repository_id, parent_digest) REFERENCES manifests ON DELETE CASCADE,
    FOREIGN KEY (repository_id, child_digest) REFERENCES manifests ON DELETE RESTRICT
);
CREATE INDEX manifest_children_child ON manifest_children (repository_id, child_digest);

CREATE TABLE tags (
    repository_id   bigint NOT NULL,
    name            text NOT NULL,
    manifest_digest text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests ON DELETE CASCADE
);
CREATE INDEX tags_manifest ON tags (repository_id, manifest_digest);

-- Upload sessions: all a replica needs to continue an upload another
-- replica started. Bytes below one S3 part are staged here, so every part
-- sent to S3 but the last has the full part size.
CREATE TABLE uploads (
    id            uuid PRIMARY KEY,
    repository_id bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    size          bigint NOT NULL DEFAULT 0,
    multipart_id  text,
    parts         jsonb NOT NULL DEFAULT '[]',
    staged        bytea NOT NULL DEFAULT '',
    hash_state    bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_updated ON uploads (updated_at);
