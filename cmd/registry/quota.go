// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/policy"
)

func quotaCommand() *cli.Command {
	flags := append([]cli.Flag{policyFlag(true),
		&cli.BoolFlag{Name: "json", Usage: "print JSON for machines instead of a table"},
	}, databaseFlags()...)
	return &cli.Command{
		Name:  "quota",
		Usage: "show each quota's usage against its limits",
		Description: "Computes, from the index, what the repositories under each quota of --policy-file store: " +
			"the unique bytes of their manifests and of the blobs those reference, and their tags. " +
			"Exits 0 even when a quota is exceeded (a lowered limit); pushes are then refused until usage falls.",
		Flags:  flags,
		Action: func(c *cli.Context) error { return quotaReport(c, false) },
		Subcommands: []*cli.Command{{
			Name:  "recompute",
			Usage: "replace the usage figures replicas enforce quotas from with exact ones",
			Description: "Replicas keep a figure per quota, raised by each push and recomputed when it would refuse one " +
				"or is older than 10 minutes; this recomputes every quota's figure now (after a rebuild-db, " +
				"or to see deletions at once). Safe while replicas serve.",
			Flags:  flags,
			Action: func(c *cli.Context) error { return quotaReport(c, true) },
		}},
	}
}

// quotaRow is one line of the report.
type quotaRow struct {
	Match    string           `json:"match"`
	Line     int              `json:"line"`
	Usage    store.QuotaUsage `json:"usage"`
	MaxBytes *int64           `json:"maxBytes"`
	MaxTags  *int64           `json:"maxTags"`
	Exceeded bool             `json:"exceeded"`
}

func quotaReport(c *cli.Context, recompute bool) error {
	p, err := loadPolicy(c)
	if err != nil {
		return err
	}
	pool, err := openMigrated(c.Context, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	rows := []quotaRow{}
	for _, q := range p.Quotas {
		var u store.QuotaUsage
		if recompute {
			u, err = store.RecomputeQuotaUsage(c.Context, pool, q)
		} else {
			u, err = store.ComputeQuotaUsage(c.Context, pool, q)
		}
		if err != nil {
			return fmt.Errorf("quota %s (line %d): %w", q.Match, q.Line, err)
		}
		r := quotaRow{Match: q.Match, Line: q.Line, Usage: u}
		if q.MaxBytes >= 0 {
			r.MaxBytes = &q.MaxBytes
			r.Exceeded = u.Bytes > q.MaxBytes
		}
		if q.MaxTags >= 0 {
			r.MaxTags = &q.MaxTags
			r.Exceeded = r.Exceeded || u.Tags > q.MaxTags
		}
		rows = append(rows, r)
	}
	w := c.App.Writer
	if done, err := printJSONOrNone(c, rows, len(rows), "the policy file sets no quotas"); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MATCH\tBYTES\tMAX BYTES\tUSED\tTAGS\tMAX TAGS\tSTATE")
	for i, r := range rows {
		q := p.Quotas[i]
		used := "-"
		if q.MaxBytes > 0 {
			used = fmt.Sprintf("%.1f%%", 100*float64(r.Usage.Bytes)/float64(q.MaxBytes))
		}
		state := "ok"
		if r.Exceeded {
			state = "EXCEEDED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Match, policy.FormatSize(r.Usage.Bytes),
			limitText(q.MaxBytes, policy.FormatSize), used, r.Usage.Tags, limitText(q.MaxTags, count), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if recompute {
		fmt.Fprintf(w, "recomputed %d quota figures\n", len(rows))
	}
	return nil
}

// printJSON prints v as indented JSON, for machines.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printJSONOrNone prints v as indented JSON with --json, or says none
// when there are no rows; done is false when the caller prints a table.
func printJSONOrNone(c *cli.Context, v any, rows int, none string) (done bool, err error) {
	if c.Bool("json") {
		return true, printJSON(c.App.Writer, v)
	}
	if rows == 0 {
		_, err := fmt.Fprintln(c.App.Writer, none)
		return true, err
	}
	return false, nil
}
