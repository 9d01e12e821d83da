// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/store"
)

func auditCommand() *cli.Command {
	flags := append([]cli.Flag{
		&cli.StringFlag{Name: "repository", Usage: "only events of this repository"},
		&cli.StringFlag{Name: "identity", Usage: "only events of this user or robot (\"\" for anonymous is not selectable)"},
		&cli.StringFlag{Name: "action", Usage: "only this action: push, tag.move, manifest.delete, tag.delete, blob.delete, denied, login.failed"},
		&cli.StringFlag{Name: "since", Usage: "only events at or after this time (RFC 3339, or a duration back from now such as 24h)"},
		&cli.StringFlag{Name: "until", Usage: "only events before this time (RFC 3339, or a duration back from now)"},
		&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most this many events, newest first"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON lines for machines instead of a table"},
	}, databaseFlags()...)
	return &cli.Command{
		Name:  "audit",
		Usage: "query the audit log: pushes, tag moves, deletions, refusals and failed logins",
		Flags: flags,
		Action: func(c *cli.Context) error {
			f := store.AuditFilter{Repository: c.String("repository"), Identity: c.String("identity"),
				Action: c.String("action"), Limit: c.Int("limit")}
			var err error
			if f.Since, err = auditTime(c.String("since")); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if f.Until, err = auditTime(c.String("until")); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			if f.Limit <= 0 {
				return fmt.Errorf("--limit must be above zero, not %d", f.Limit)
			}
			pool, err := openMigrated(c.Context, c)
			if err != nil {
				return err
			}
			defer pool.Close()
			events, err := store.QueryAudit(c.Context, pool, f)
			if err != nil {
				return err
			}
			w := c.App.Writer
			if c.Bool("json") {
				enc := json.NewEncoder(w)
				for _, e := range events {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTION\tIDENTITY\tADDRESS\tREPOSITORY\tTAG\tDIGEST\tDETAIL")
			for _, e := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Action,
					auditIdentity(e), orDash(e.Address), orDash(e.Repository), orDash(e.Tag), orDash(e.Digest), e.Detail)
			}
			return tw.Flush()
		},
	}
}

// auditTime reads an RFC 3339 time, or a duration back from now.
func auditTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

// auditIdentity shows an identity, marking the name a failed login tried
// as unproven (%q, as it may hold anything).
func auditIdentity(e store.AuditEvent) string {
	if e.Unverified {
		return fmt.Sprintf("%q (unverified)", e.Identity)
	}
	return orDash(e.Identity)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// logAuditEvent writes an audit event to the structured log, under its
// own message so that log pipelines can route it.
func logAuditEvent(log zerolog.Logger, e store.AuditEvent) {
	log.Info().Int64("audit_id", e.ID).Str("action", e.Action).Str("identity", e.Identity).Str("address", e.Address).
		Str("repository", e.Repository).Str("digest", e.Digest).Str("tag", e.Tag).Str("detail", e.Detail).
		Bool("identity_unverified", e.Unverified).Int("attempts", e.Attempts).Msg("audit")
}
