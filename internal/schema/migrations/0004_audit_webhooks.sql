-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- The audit log and the webhook outbox (docs/auth.md). Expand only: new
-- tables older binaries never touch. Neither is rebuilt by
-- registry rebuild-db: the bucket holds content, not history.

-- Every push, tag move, deletion, policy refusal and failed login. Rows
-- of a change are written in the change's own transaction, so the log
-- holds exactly what happened; the trigger below keeps it append-only.
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    action     text NOT NULL,
    identity   text NOT NULL DEFAULT '',
    address    text NOT NULL DEFAULT '',
    repository text NOT NULL DEFAULT '',
    digest     text NOT NULL DEFAULT '',
    tag        text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_repository ON audit_events (repository, at);
CREATE INDEX audit_events_identity ON audit_events (identity, at);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Webhook deliveries still to make: a CloudEvent and where to send it,
-- written in the transaction of the change it reports, so a crash loses
-- none. Replicas claim due rows with FOR UPDATE SKIP LOCKED and mark them
-- delivered in the same transaction, so one replica sends each.
CREATE TABLE webhook_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL,
    event           jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    failed_at       timestamptz
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
