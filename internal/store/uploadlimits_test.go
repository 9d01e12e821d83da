// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ha-registry/ha-registry/auth"
)

// TestClientOf: names count as themselves, anonymous callers by address
// apart from any name, and a name too long for the column's index is
// shortened to valid UTF-8 that still tells it from its neighbours.
func TestClientOf(t *testing.T) {
	for _, c := range []struct {
		caller auth.Caller
		want   string
	}{
		{auth.Caller{Name: "alice", Address: "10.0.0.1"}, "alice"},
		{auth.Caller{Address: "10.0.0.1"}, "@10.0.0.1"},
		{auth.Caller{}, ""},
	} {
		if got := clientOf(auth.WithCaller(context.Background(), c.caller)); got != c.want {
			t.Errorf("clientOf(%+v) = %q, want %q", c.caller, got, c.want)
		}
	}
	long := strings.Repeat("é", 400)
	a, b := shortClient(long+"a"), shortClient(long+"b")
	if len(a) > maxClientLen || !utf8.ValidString(a) || a == b || !strings.HasPrefix(a, "éé") {
		t.Errorf("shortClient of long names: %q (%d bytes) and %q", a, len(a), b)
	}
}
