-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Who opened each upload session, so that open sessions can be capped per
-- client (a user's or robot's name, '@' and the address for anonymous
-- callers) as well as per repository. Expand-only: binaries from before
-- leave the column at its default, '', which no cap counts.

ALTER TABLE uploads ADD COLUMN client text NOT NULL DEFAULT '';
CREATE INDEX uploads_client ON uploads (client);
CREATE INDEX uploads_repository ON uploads (repository_id);
