// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/policy"
)

// policyFlag names the policy file; serve and the policy subcommands
// share the variable, so a host's jobs read the replicas' policy.
func policyFlag(required bool) cli.Flag {
	return &cli.StringFlag{Name: "policy-file", EnvVars: []string{"REGISTRY_POLICY_FILE"}, Required: required,
		Usage: "YAML policy file: quotas and retention (docs/policy.md); serve re-reads it on SIGHUP"}
}

// loadPolicy reads --policy-file; without one the policy is empty.
func loadPolicy(c *cli.Context) (*policy.Policy, error) {
	path := c.String("policy-file")
	if path == "" {
		return &policy.Policy{}, nil
	}
	return policy.Load(path)
}

// reloadOnHUP re-reads the policy file into cur, and calls reloadIdentities
// (when not nil), on every SIGHUP. A file with errors is refused whole and
// what is in force stays, so a bad edit never half-applies.
func reloadOnHUP(ctx context.Context, path string, cur *policy.Current, reloadIdentities func() error, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	// Never stopped: a SIGHUP after ctx ends (while draining) is then
	// ignored instead of ending the process with the signal's default.
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if reloadIdentities != nil {
				if err := reloadIdentities(); err != nil {
					log.Error().Err(err).Msg("users or robots file refused; the previous ones stay in force")
				} else {
					log.Info().Msg("users and robots reloaded")
				}
			}
			if path == "" {
				continue
			}
			p, err := policy.Load(path)
			if err != nil {
				log.Error().Err(err).Msg("policy file refused; the previous policy stays in force")
				continue
			}
			cur.Set(p)
			logPolicy(log, "policy reloaded", path, p)
		}
	}()
}

func logPolicy(log zerolog.Logger, msg, path string, p *policy.Policy) {
	log.Info().Str("file", path).Int("quotas", len(p.Quotas)).Int("retention_rules", len(p.Retention)).Msg(msg)
}

// limitText writes a limit for the quota table.
func limitText(n int64, format func(int64) string) string {
	if n < 0 {
		return "-"
	}
	return format(n)
}

func count(n int64) string { return fmt.Sprint(n) }
