// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/auth"
	"github.com/ha-registry/ha-registry/policy"
)

func authFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "token-key", EnvVars: []string{"REGISTRY_TOKEN_KEY_FILE"},
			Usage: "PEM private key (Ed25519, ECDSA P-256/P-384 or RSA) of the built-in token endpoint, the same on every replica; turns authentication on"},
		&cli.StringSliceFlag{Name: "trust-issuer", EnvVars: []string{"REGISTRY_TRUST_ISSUERS"},
			Usage: "ISSUER=FILE: also accept tokens of an external token service whose iss is ISSUER, signed by a key in the PEM FILE (public keys or certificates); turns authentication on"},
		&cli.StringFlag{Name: "auth-service", Value: "ha-registry", EnvVars: []string{"REGISTRY_AUTH_SERVICE"},
			Usage: "the registry's service name: the audience tokens must carry"},
		&cli.StringFlag{Name: "auth-realm", EnvVars: []string{"REGISTRY_AUTH_REALM"},
			Usage: "token endpoint URL given to clients (set it); default this registry's /token at the address the connection arrived on, or a trusted proxy's X-Forwarded-Host, never the client's Host"},
		&cli.StringFlag{Name: "token-issuer", Value: "ha-registry", EnvVars: []string{"REGISTRY_TOKEN_ISSUER"},
			Usage: "the iss claim of the built-in endpoint's tokens"},
		&cli.DurationFlag{Name: "token-lifetime", Value: 5 * time.Minute, EnvVars: []string{"REGISTRY_TOKEN_LIFETIME"},
			Usage: "how long a token of the built-in endpoint is valid"},
		&cli.StringFlag{Name: "htpasswd-file", EnvVars: []string{"REGISTRY_HTPASSWD_FILE"},
			Usage: "users: an htpasswd file of bcrypt hashes (htpasswd -B); re-read on SIGHUP"},
		&cli.StringFlag{Name: "robots-file", EnvVars: []string{"REGISTRY_ROBOTS_FILE"},
			Usage: "robots: lines NAME:sha256:HEX, HEX the SHA-256 of the robot's token; re-read on SIGHUP"},
	}
}

// loadIdentities reads the htpasswd and robots files.
func loadIdentities(c *cli.Context) (*auth.Identities, error) {
	var users map[string][]byte
	var robots map[string][32]byte
	if path := c.String("htpasswd-file"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--htpasswd-file: %w", err)
		}
		if users, err = auth.ParseHtpasswd(b); err != nil {
			return nil, fmt.Errorf("--htpasswd-file %s: %w", path, err)
		}
	}
	if path := c.String("robots-file"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--robots-file: %w", err)
		}
		if robots, err = auth.ParseRobots(b); err != nil {
			return nil, fmt.Errorf("--robots-file %s: %w", path, err)
		}
	}
	return auth.NewIdentities(users, robots)
}

// newGate builds the authentication gate from the flags, or returns nil
// when authentication is off (neither --token-key nor --trust-issuer).
// ids holds the identities, which SIGHUP reloads.
func newGate(c *cli.Context, cur *policy.Current, ids *atomic.Pointer[auth.Identities]) (*auth.Gate, error) {
	service := c.String("auth-service")
	var trusted []auth.TrustedIssuer
	var issuer *auth.Issuer
	if path := c.String("token-key"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--token-key: %w", err)
		}
		key, err := auth.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("--token-key %s: %w", path, err)
		}
		if issuer, err = auth.NewIssuer(c.String("token-issuer"), key, c.Duration("token-lifetime")); err != nil {
			return nil, fmt.Errorf("--token-key: %w", err)
		}
		trusted = append(trusted, issuer.Trusted(service))
	}
	for _, v := range c.StringSlice("trust-issuer") {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--trust-issuer %q: want ISSUER=FILE", v)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--trust-issuer %s: %w", name, err)
		}
		keys, err := auth.ParsePublicKeys(b)
		if err != nil {
			return nil, fmt.Errorf("--trust-issuer %s: %s: %w", name, path, err)
		}
		trusted = append(trusted, auth.TrustedIssuer{Issuer: name, Audience: service, Keys: keys})
	}
	if len(trusted) == 0 {
		if c.String("htpasswd-file") != "" || c.String("robots-file") != "" {
			return nil, fmt.Errorf("--htpasswd-file and --robots-file need --token-key: users log in at the built-in token endpoint")
		}
		return nil, nil
	}
	v, err := auth.NewVerifier(trusted...)
	if err != nil {
		return nil, err
	}
	idents, err := loadIdentities(c)
	if err != nil {
		return nil, err
	}
	ids.Store(idents)
	return &auth.Gate{
		Service: service, Realm: c.String("auth-realm"), Verifier: v, Issuer: issuer,
		Identities: ids.Load, Policy: cur.Get, Throttle: auth.NewThrottle(10, time.Minute),
	}, nil
}
