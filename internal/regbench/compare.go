// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"fmt"
	"io"
	"time"
)

// Comparison is the medians of a side-by-side run, keyed by workload,
// target and concurrency.
type Comparison struct {
	byKey map[compareKey]Summary
	order []string // workloads in the order first met
}

type compareKey struct {
	workload, target string
	clients          int
}

// Compare groups results by workload, target and concurrency and takes
// the medians of each group.
func Compare(results []Result) *Comparison {
	groups := map[compareKey][]Result{}
	c := &Comparison{byKey: map[compareKey]Summary{}}
	seen := map[string]bool{}
	for _, r := range results {
		k := compareKey{r.Workload, r.Target, r.Clients}
		groups[k] = append(groups[k], r)
		if !seen[r.Workload] {
			seen[r.Workload] = true
			c.order = append(c.order, r.Workload)
		}
	}
	for k, rs := range groups {
		c.byKey[k] = Summarize(rs)
	}
	return c
}

// Get returns the summary of workload on target at clients.
func (c *Comparison) Get(workload, target string, clients int) (Summary, bool) {
	s, ok := c.byKey[compareKey{workload, target, clients}]
	return s, ok
}

// rate is a summary's throughput: MiB/s for blob workloads, else op/s.
func rate(s Summary) float64 {
	if w, ok := WorkloadByName(s.Workload); ok && w.Blob {
		return s.MiBPerSec
	}
	return s.OpsPerSec
}

func unit(workload string) string {
	if w, ok := WorkloadByName(workload); ok && w.Blob {
		return "MiB/s"
	}
	return "req/s"
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// WriteTable prints a Markdown table of target a against target b, with
// the ratio a/b of the medians, for every workload measured on both.
func (c *Comparison) WriteTable(w io.Writer, a, b string, levels []int) {
	fmt.Fprintf(w, "| workload | clients | %s | %s | %s / %s | %s p50 / p99 | %s p50 / p99 | %s peak RSS | %s peak RSS |\n",
		a, b, a, b, a, b, a, b)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, wl := range c.order {
		for _, n := range levels {
			sa, okA := c.Get(wl, a, n)
			sb, okB := c.Get(wl, b, n)
			if !okA || !okB {
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s / %s | %s / %s | %s | %s |\n", wl, n,
				cell(sa), cell(sb), ratio(rate(sa), rate(sb)),
				Round(sa.P50), Round(sa.P99), Round(sb.P50), Round(sb.P99), MiB(sa.PeakRSS), MiB(sb.PeakRSS))
		}
	}
}

// cell is a throughput with its unit, or the error count when it failed.
func cell(s Summary) string {
	if s.Errors > 0 && s.OpsPerSec == 0 {
		return fmt.Sprintf("fails (%d errors)", s.Errors)
	}
	out := fmt.Sprintf("%.1f %s", rate(s), unit(s.Workload))
	if s.Errors > 0 {
		out += fmt.Sprintf(" (%d errors)", s.Errors)
	}
	return out
}

// Targets are the figures of the targets that are not in the results.
type Targets struct {
	StartToReady time.Duration
	IdleRSS      int64
	// Memory is the peak RSS (VmHWM) of a fresh process that ran one
	// workload at one concurrency, by workload and clients.
	Memory map[string]map[int]int64
}

// WriteTargets checks the targets of issue 7 against the medians of
// target ours (and oursRedirect for redirected pulls), printing each with
// its measured figure and whether it is met.
func (c *Comparison) WriteTargets(w io.Writer, ours, oursRedirect, dist, s3 string, levels []int, t Targets) {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	fmt.Fprintln(w, "| target | clients | measured | verdict |")
	fmt.Fprintln(w, "| --- | ---: | --- | --- |")
	for _, n := range levels {
		if a, ok := c.Get("pull-streamed", ours, n); ok {
			if b, ok := c.Get("s3-get", s3, n); ok {
				r := a.MiBPerSec / b.MiBPerSec
				fmt.Fprintf(w, "| streamed pull >= 90%% of direct S3 GET | %d | %.1f vs %.1f MiB/s = %.0f%% | %s |\n",
					n, a.MiBPerSec, b.MiBPerSec, 100*r, met(r >= 0.9))
			}
		}
	}
	for _, n := range levels {
		if a, ok := c.Get("pull-redirected", oursRedirect, n); ok {
			fmt.Fprintf(w, "| redirected pull carries no blob bytes | %d | %d body bytes from the registry in %d runs, %.1f MiB/s from S3 | %s |\n",
				n, a.RegistryBytes, a.Runs, a.MiBPerSec, met(a.RegistryBytes < int64(a.Runs)*1024 && a.Errors == 0))
		}
	}
	for _, n := range levels {
		if a, ok := c.Get("push-monolithic", ours, n); ok {
			if b, ok := c.Get("s3-multipart", s3, n); ok {
				r := a.MiBPerSec / b.MiBPerSec
				fmt.Fprintf(w, "| push >= 80%% of direct S3 multipart | %d | %.1f vs %.1f MiB/s = %.0f%% | %s |\n",
					n, a.MiBPerSec, b.MiBPerSec, 100*r, met(r >= 0.8))
			}
			if b, ok := c.Get("s3-multipart-copy", s3, n); ok {
				fmt.Fprintf(w, "| (for reference) push vs S3 multipart + copy + delete | %d | %.1f vs %.1f MiB/s = %.0f%% | - |\n",
					n, a.MiBPerSec, b.MiBPerSec, 100*a.MiBPerSec/b.MiBPerSec)
			}
		}
	}
	if a, ok := c.Get("manifest-get-tag", ours, 32); ok {
		if b, ok := c.Get("manifest-get-tag", dist, 32); ok {
			r := a.OpsPerSec / b.OpsPerSec
			fmt.Fprintf(w, "| manifest GET by tag >= 5x distribution | 32 | %.0f vs %.0f req/s = %.1fx | %s |\n",
				a.OpsPerSec, b.OpsPerSec, r, met(r >= 5))
			fmt.Fprintf(w, "| manifest GET by tag p99 < 5 ms | 32 | %v | %s |\n", Round(a.P99), met(a.P99 < 5*time.Millisecond))
		}
	}
	fmt.Fprintf(w, "| idle RSS <= 40 MiB | - | %s | %s |\n", MiB(t.IdleRSS), met(t.IdleRSS <= 40<<20))
	for _, wl := range []string{"push-monolithic", "push-chunked-5MiB", "push-chunked-16MiB", "pull-streamed"} {
		for _, n := range levels {
			peak, ok := t.Memory[wl][n]
			if !ok {
				continue
			}
			limit, per := int64(64)<<20, "64 MiB"
			if wl != "pull-streamed" {
				limit, per = int64(64+8*n)<<20, "64 MiB + 8 MiB per upload"
			}
			fmt.Fprintf(w, "| peak RSS <= %s (%s, fresh process) | %d | %s, limit %s | %s |\n",
				per, wl, n, MiB(peak), MiB(limit), met(peak <= limit))
		}
	}
	fmt.Fprintf(w, "| start to ready < 1 s | - | %v | %s |\n", Round(t.StartToReady), met(t.StartToReady < time.Second))
}
