// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"os"
	"testing"

	"github.com/ha-registry/ha-registry/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
