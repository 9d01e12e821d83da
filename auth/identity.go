// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is a login with an unknown name or a wrong secret;
// which of the two is never said.
var ErrBadCredentials = errors.New("invalid username or password")

// Identities are who can log in: people from an htpasswd file (bcrypt),
// robots from a robots file (the SHA-256 of a long random token, which is
// fast to check and useless to steal).
type Identities struct {
	users  map[string][]byte
	robots map[string][sha256.Size]byte
}

// dummyHash is compared against when the user is unknown, so that a
// failed login takes as long whether or not the name exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// The bcrypt costs of htpasswd entries: an entry below MinBcryptCost is
// refused, one below WeakBcryptCost loads with a warning
// ([Identities.WeakHashes]). The floor is htpasswd -B's own default (5),
// so files made the usual way still load; the warning names each user
// to re-hash with htpasswd -B -C 10. Each step of cost doubles the work
// of guessing a stolen file's passwords, and of every login.
const (
	MinBcryptCost  = 5
	WeakBcryptCost = bcrypt.DefaultCost
)

// ParseHtpasswd reads "name:bcrypt-hash" lines; blank lines and # comments
// are skipped. Other hash schemes (MD5, SHA-1, crypt) are refused: they
// are too fast to guess against; so are bcrypt costs below
// [MinBcryptCost], and names longer than [MaxLoginName], which could
// never log in.
func ParseHtpasswd(content []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	err := eachLine(content, func(line int, text string) error {
		name, hash, ok := strings.Cut(text, ":")
		if !ok || name == "" {
			return fmt.Errorf("line %d: want name:hash", line)
		}
		if err := loginName(name); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return fmt.Errorf("line %d: %s: not a bcrypt hash (create entries with htpasswd -B)", line, name)
		}
		if cost < MinBcryptCost {
			return fmt.Errorf("line %d: %s: bcrypt cost %d is below %d, too cheap to guess against (re-create with htpasswd -B -C %d)",
				line, name, cost, MinBcryptCost, WeakBcryptCost)
		}
		if _, dup := users[name]; dup {
			return fmt.Errorf("line %d: %s is listed twice", line, name)
		}
		users[name] = []byte(hash)
		return nil
	})
	return users, err
}

// loginName refuses a name no one could log in with at the token
// endpoint.
func loginName(name string) error {
	if len(name) > MaxLoginName {
		return fmt.Errorf("a name of %d bytes; at most %d can log in", len(name), MaxLoginName)
	}
	return nil
}

// WeakHash is a user whose bcrypt cost is below [WeakBcryptCost].
type WeakHash struct {
	User string
	Cost int
}

// WeakHashes lists the users whose bcrypt cost is below [WeakBcryptCost],
// by name, for a warning at load; it never holds the hashes.
func (ids *Identities) WeakHashes() []WeakHash {
	if ids == nil {
		return nil
	}
	var out []WeakHash
	for name, hash := range ids.users {
		if cost, err := bcrypt.Cost(hash); err == nil && cost < WeakBcryptCost {
			out = append(out, WeakHash{User: name, Cost: cost})
		}
	}
	slices.SortFunc(out, func(a, b WeakHash) int { return strings.Compare(a.User, b.User) })
	return out
}

// ParseRobots reads "name:sha256:HEX" lines, HEX being the SHA-256 of the
// robot's token; blank lines and # comments are skipped.
func ParseRobots(content []byte) (map[string][sha256.Size]byte, error) {
	robots := map[string][sha256.Size]byte{}
	err := eachLine(content, func(line int, text string) error {
		name, rest, ok := strings.Cut(text, ":")
		alg, hexSum, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || name == "" || alg != "sha256" {
			return fmt.Errorf("line %d: want name:sha256:HEX", line)
		}
		if err := loginName(name); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		sum, err := hex.DecodeString(hexSum)
		if err != nil || len(sum) != sha256.Size {
			return fmt.Errorf("line %d: %s: want 64 hexadecimal digits after sha256:", line, name)
		}
		if _, dup := robots[name]; dup {
			return fmt.Errorf("line %d: %s is listed twice", line, name)
		}
		robots[name] = [sha256.Size]byte(sum)
		return nil
	})
	return robots, err
}

func eachLine(content []byte, fn func(line int, text string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := fn(n, text); err != nil {
			return err
		}
	}
	return sc.Err()
}

// NewIdentities joins users and robots; a name may be only one of them.
func NewIdentities(users map[string][]byte, robots map[string][sha256.Size]byte) (*Identities, error) {
	for name := range robots {
		if _, ok := users[name]; ok {
			return nil, fmt.Errorf("%s is both a user and a robot", name)
		}
	}
	return &Identities{users: users, robots: robots}, nil
}

// Authenticate checks a name and secret, in constant time for robots and
// in bcrypt's time for users, known or not.
func (ids *Identities) Authenticate(name, secret string) error {
	if ids == nil {
		return ErrBadCredentials
	}
	if want, ok := ids.robots[name]; ok {
		got := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
		return ErrBadCredentials
	}
	hash, ok := ids.users[name]
	if !ok {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(secret)) != nil || !ok {
		return ErrBadCredentials
	}
	return nil
}
