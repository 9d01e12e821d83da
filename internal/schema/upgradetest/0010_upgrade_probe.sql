-- SPDX-FileCopyrightText: 2026 The ha-registry authors
-- SPDX-License-Identifier: EUPL-1.2

-- Compiled in only by the upgradetest build tag: a stand-in for the next
-- release's expand migration. It touches tables the push path uses, the
-- way a real one would, and the binary it upgrades from must keep
-- serving on it.

ALTER TABLE manifests ADD COLUMN upgrade_probe text;
CREATE TABLE upgrade_probe (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    note text NOT NULL
);
