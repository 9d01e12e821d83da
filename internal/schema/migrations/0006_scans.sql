-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Vulnerability scanning (internal/scan, docs/scan.md). Expand only: new
-- tables older binaries never touch. The full report of each scan is an
-- OCI artifact in the bucket, a referrer of the scanned manifest, so it
-- survives rebuild-db; these rows are the index of it that the pull
-- policy and registry scan read.

-- One row per image manifest: queued, being scanned (under a lease, so a
-- replica that dies mid-scan gives the work back), done, unscannable
-- (over the size limit) or failed (the error kept, retried on a later
-- database).
CREATE TABLE scans (
    repository_id bigint NOT NULL,
    digest        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'scanning', 'done', 'unscannable', 'failed')),
    lease_until   timestamptz,
    lease_owner   text NOT NULL DEFAULT '',
    scanner       text NOT NULL DEFAULT '',
    db_version    text NOT NULL DEFAULT '',
    critical      integer NOT NULL DEFAULT 0,
    high          integer NOT NULL DEFAULT 0,
    medium        integer NOT NULL DEFAULT 0,
    low           integer NOT NULL DEFAULT 0,
    unknown       integer NOT NULL DEFAULT 0,
    report_digest text NOT NULL DEFAULT '',
    error         text NOT NULL DEFAULT '',
    scanned_at    timestamptz,
    PRIMARY KEY (repository_id, digest),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests ON DELETE CASCADE
);
CREATE INDEX scans_queue ON scans (status, lease_until);

-- The findings of the last scan, for the pull policy's allow-list and
-- registry scan --report.
CREATE TABLE scan_findings (
    repository_id bigint NOT NULL,
    digest        text NOT NULL,
    id            text NOT NULL,
    aliases       text[] NOT NULL DEFAULT '{}',
    severity      text NOT NULL,
    score         real,
    package       text NOT NULL DEFAULT '',
    version       text NOT NULL DEFAULT '',
    ecosystem     text NOT NULL DEFAULT '',
    summary       text NOT NULL DEFAULT '',
    PRIMARY KEY (repository_id, digest, id, package),
    FOREIGN KEY (repository_id, digest) REFERENCES scans ON DELETE CASCADE
);
