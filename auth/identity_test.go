// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// robotToken is the ci-bot robot's secret in the identity and gate tests.
const robotToken = "robot-token-7f3c9a1e5d2b4f60"

// mustBcrypt hashes password at the lowest cost an htpasswd file may
// have, to keep tests fast.
func mustBcrypt(t *testing.T, password string) []byte {
	t.Helper()
	return mustBcryptCost(t, password, MinBcryptCost)
}

func mustBcryptCost(t *testing.T, password string, cost int) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// robotLine is a robots file line for name with token's SHA-256.
func robotLine(name, token string) string {
	sum := sha256.Sum256([]byte(token))
	return name + ":sha256:" + hex.EncodeToString(sum[:])
}

// testIdentities are alice and bob (users) and ci-bot (a robot).
func testIdentities(t *testing.T) *Identities {
	t.Helper()
	users := map[string][]byte{"alice": mustBcrypt(t, "alice-secret"), "bob": mustBcrypt(t, "bob-secret")}
	robots := map[string][sha256.Size]byte{"ci-bot": sha256.Sum256([]byte(robotToken))}
	ids, err := NewIdentities(users, robots)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestParseHtpasswd(t *testing.T) {
	alice, bob := mustBcrypt(t, "alice-secret"), mustBcrypt(t, "bob-secret")
	content := "# people\n\nalice:" + string(alice) + "\n   \n  # indented comment\n  bob:" + string(bob) + "  \n"
	users, err := ParseHtpasswd([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"alice": alice, "bob": bob}
	if diff := cmp.Diff(want, users); diff != "" {
		t.Errorf("users (-want +got):\n%s", diff)
	}
	if err := bcrypt.CompareHashAndPassword(users["alice"], []byte("alice-secret")); err != nil {
		t.Errorf("alice's parsed hash does not match her password: %v", err)
	}

	empty, err := ParseHtpasswd([]byte("# nobody yet\n\n"))
	if err != nil || len(empty) != 0 {
		t.Errorf("comments only: users = %v, err = %v; want none and no error", empty, err)
	}
}

func TestParseHtpasswdRefuses(t *testing.T) {
	good := "alice:" + string(mustBcrypt(t, "alice-secret"))
	for _, tc := range []struct {
		name    string
		content string
		want    []string // substrings of the error
	}{
		{"no colon", "alice", []string{"line 1", "name:hash"}},
		{"empty name", ":" + string(mustBcrypt(t, "x")), []string{"line 1", "name:hash"}},
		{"MD5", "# c\n\nbob:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", []string{"line 3", "bob", "not a bcrypt hash"}},
		{"SHA", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", []string{"line 1", "bob", "not a bcrypt hash"}},
		{"crypt", "bob:rl0uk0ceNJ2RU", []string{"line 1", "bob", "not a bcrypt hash"}},
		{"plain text", "bob:hunter2", []string{"line 1", "not a bcrypt hash"}},
		{"duplicate", good + "\n# again\n" + good, []string{"line 3", "alice is listed twice"}},
		{"bcrypt cost below the floor", good + "\nbob:" + string(mustBcryptCost(t, "x", bcrypt.MinCost)), []string{"line 2", "bob", "bcrypt cost 4 is below 5", "htpasswd -B -C 10"}},
		{"name too long to log in", strings.Repeat("n", MaxLoginName+1) + ":" + string(mustBcrypt(t, "x")), []string{"line 1", "at most 256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := ParseHtpasswd([]byte(tc.content))
			if err == nil {
				t.Fatalf("ParseHtpasswd accepted %q: %v", tc.content, users)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestWeakHashes: users whose bcrypt cost is below the recommended one
// load, and are listed by name and cost for a warning.
func TestWeakHashes(t *testing.T) {
	content := "carol:" + string(mustBcryptCost(t, "c", WeakBcryptCost)) + "\n" +
		"bob:" + string(mustBcryptCost(t, "b", WeakBcryptCost-1)) + "\n" +
		"alice:" + string(mustBcrypt(t, "a")) + "\n"
	users, err := ParseHtpasswd([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := NewIdentities(users, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []WeakHash{{User: "alice", Cost: MinBcryptCost}, {User: "bob", Cost: WeakBcryptCost - 1}}
	if diff := cmp.Diff(want, ids.WeakHashes()); diff != "" {
		t.Errorf("weak hashes (-want +got):\n%s", diff)
	}
}

func TestParseRobots(t *testing.T) {
	content := "# robots\n\n" + robotLine("ci-bot", robotToken) + "\n  " + robotLine("deployer", "other") + "  \n"
	robots, err := ParseRobots([]byte(content))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][sha256.Size]byte{
		"ci-bot":   sha256.Sum256([]byte(robotToken)),
		"deployer": sha256.Sum256([]byte("other")),
	}
	if diff := cmp.Diff(want, robots); diff != "" {
		t.Errorf("robots (-want +got):\n%s", diff)
	}
}

func TestParseRobotsRefuses(t *testing.T) {
	sum := sha256.Sum256([]byte(robotToken))
	hexSum := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		content string
		want    []string
	}{
		{"wrong algorithm", "ci-bot:sha512:" + hexSum, []string{"line 1", "name:sha256:HEX"}},
		{"no algorithm", "ci-bot:" + hexSum, []string{"line 1", "name:sha256:HEX"}},
		{"no colon", "ci-bot", []string{"line 1", "name:sha256:HEX"}},
		{"empty name", ":sha256:" + hexSum, []string{"line 1", "name:sha256:HEX"}},
		{"short hex", "# c\nci-bot:sha256:" + hexSum[:62], []string{"line 2", "ci-bot", "64 hexadecimal digits"}},
		{"long hex", "ci-bot:sha256:" + hexSum + "00", []string{"line 1", "64 hexadecimal digits"}},
		{"non-hex", "ci-bot:sha256:" + strings.Repeat("zz", 32), []string{"line 1", "64 hexadecimal digits"}},
		{"token instead of hash", "ci-bot:sha256:" + robotToken, []string{"line 1", "64 hexadecimal digits"}},
		{"duplicate", robotLine("ci-bot", "a") + "\n\n" + robotLine("ci-bot", "b"), []string{"line 3", "ci-bot is listed twice"}},
		{"name too long to log in", robotLine(strings.Repeat("r", MaxLoginName+1), "a"), []string{"line 1", "at most 256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			robots, err := ParseRobots([]byte(tc.content))
			if err == nil {
				t.Fatalf("ParseRobots accepted %q: %v", tc.content, robots)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewIdentitiesRefusesUserAndRobot(t *testing.T) {
	users := map[string][]byte{"ci-bot": mustBcrypt(t, "pw")}
	robots := map[string][sha256.Size]byte{"ci-bot": sha256.Sum256([]byte(robotToken))}
	ids, err := NewIdentities(users, robots)
	if err == nil {
		t.Fatalf("NewIdentities accepted a name that is both a user and a robot: %+v", ids)
	}
	if !strings.Contains(err.Error(), "ci-bot is both a user and a robot") {
		t.Errorf("error = %q, want it to name ci-bot", err)
	}
}

func TestAuthenticate(t *testing.T) {
	ids := testIdentities(t)
	for _, tc := range []struct {
		name, user, secret string
		ok                 bool
	}{
		{"user, right password", "alice", "alice-secret", true},
		{"other user, right password", "bob", "bob-secret", true},
		{"user, wrong password", "alice", "bob-secret", false},
		{"user, empty password", "alice", "", false},
		{"user, password with suffix", "alice", "alice-secret ", false},
		{"robot, right token", "ci-bot", robotToken, true},
		{"robot, wrong token", "ci-bot", robotToken + "x", false},
		{"robot, its hash as token", "ci-bot", robotLine("ci-bot", robotToken)[len("ci-bot:sha256:"):], false},
		{"unknown name", "mallory", "alice-secret", false},
		{"unknown name, dummy hash's password", "mallory", "no such user", false},
		{"empty name", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ids.Authenticate(tc.user, tc.secret)
			switch {
			case tc.ok && err != nil:
				t.Errorf("Authenticate(%q) = %v, want success", tc.user, err)
			case !tc.ok && !errors.Is(err, ErrBadCredentials):
				t.Errorf("Authenticate(%q) = %v, want ErrBadCredentials", tc.user, err)
			}
		})
	}

	var none *Identities
	if err := none.Authenticate("alice", "alice-secret"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("nil Identities: Authenticate = %v, want ErrBadCredentials", err)
	}
}
