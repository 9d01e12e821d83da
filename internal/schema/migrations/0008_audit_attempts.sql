-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Failed logins in the audit log (docs/auth.md). Expand only: new columns
-- with defaults, which older binaries leave to their defaults, and which
-- PostgreSQL adds without rewriting the table (or firing its
-- append-only trigger).

-- The identity is the name a failed login tried, which no one proved: it
-- is stored cut to 64 bytes, as it may be a password typed into the user
-- field.
ALTER TABLE audit_events ADD COLUMN identity_unverified boolean NOT NULL DEFAULT false;

-- How many attempts the row stands for: the login throttle's refusals are
-- written one row per name, address and minute, not one per request.
ALTER TABLE audit_events ADD COLUMN attempts integer NOT NULL DEFAULT 1;
