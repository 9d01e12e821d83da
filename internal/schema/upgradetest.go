// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

//go:build upgradetest

package schema

import "embed"

// Builds tagged upgradetest carry one more migration than the release
// they are built from: the rolling-upgrade test runs them as "the next
// release" next to the plain build, which must keep serving.

//go:embed upgradetest/*.sql
var upgradeFiles embed.FS

func init() { sources = append(sources, mustSub(upgradeFiles, "upgradetest")) }
