// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Summary is the median of repeated runs of one workload on one target
// at one concurrency.
type Summary struct {
	Workload, Target string
	Clients, Runs    int
	// Errors sums the runs' errors.
	Errors    int
	OpsPerSec float64
	MiBPerSec float64
	P50, P99  time.Duration
	// RegistryBytes sums what the runs read from the registry.
	RegistryBytes int64
	// PeakRSS is the highest of the runs' peaks.
	PeakRSS int64
}

// Summarize takes the median of each figure over runs of one workload,
// target and concurrency.
func Summarize(runs []Result) Summary {
	if len(runs) == 0 {
		return Summary{}
	}
	s := Summary{Workload: runs[0].Workload, Target: runs[0].Target, Clients: runs[0].Clients, Runs: len(runs)}
	var ops, mib []float64
	var p50, p99 []time.Duration
	for _, r := range runs {
		s.Errors += r.Errors
		s.RegistryBytes += r.RegistryBytes
		s.PeakRSS = max(s.PeakRSS, r.PeakRSS)
		ops = append(ops, r.OpsPerSec())
		mib = append(mib, r.MiBPerSec())
		p50 = append(p50, r.P50)
		p99 = append(p99, r.P99)
	}
	s.OpsPerSec, s.MiBPerSec = median(ops), median(mib)
	s.P50, s.P99 = median(p50), median(p99)
	return s
}

// median of xs; the mean of the middle two for an even count.
func median[T float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// WriteResult prints one run as a line of text.
func WriteResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "%-22s %-14s c=%-3d ops=%-7d %9.1f op/s %8.1f MiB/s p50=%-9s p99=%-9s rss=%s errors=%d",
		r.Workload, r.Target, r.Clients, r.Ops, r.OpsPerSec(), r.MiBPerSec(),
		Round(r.P50), Round(r.P99), MiB(r.PeakRSS), r.Errors)
	if strings.HasPrefix(r.Workload, "pull-") && r.RegistryBytes != r.Bytes {
		fmt.Fprintf(w, " via-registry=%dB", r.RegistryBytes)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, " first-error=%q", r.FirstError)
	}
	fmt.Fprintln(w)
}

// Round shortens a duration for a table.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// MiB formats a byte count in MiB, "-" for zero.
func MiB(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
}
