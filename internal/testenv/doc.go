// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

// Package testenv gives tests real servers: a PostgreSQL started from the
// machine's initdb and postgres, and an S3 server (versitygw with its posix
// backend), each started once per test process on a free loopback port in
// a temporary directory, with a fresh database or bucket per caller.
// Each database is owned by [OwnerRole]; [ServingRole], which the stacks
// serve as once migrated with grants to it, owns nothing (docs/auth.md,
// Database roles).
//
// REGISTRY_TEST_DATABASE_URL (an admin URL, allowed to create roles) and REGISTRY_TEST_S3_ENDPOINT
// (with REGISTRY_TEST_S3_ACCESS_KEY, _SECRET_KEY and _REGION) name existing
// servers instead. A missing server binary or tool skips the test, except
// under CI=true, where it fails it: CI must never pass by skipping.
package testenv
