// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OSV runs Google's OSV-Scanner on image archives.
type OSV struct {
	// Binary is the osv-scanner program; "" means osv-scanner on PATH.
	Binary string
	// DBPath, when set, scans offline against the OSV databases there
	// (DBPath/osv-scalibr/<Ecosystem>/all.zip); otherwise osv-scanner asks
	// osv.dev.
	DBPath string
	// Timeout bounds one scan; 0 means 10 minutes.
	Timeout time.Duration
}

var _ Scanner = (*OSV)(nil)

func (o *OSV) binary() string {
	if o.Binary == "" {
		return "osv-scanner"
	}
	return o.Binary
}

// Name is "osv-scanner" and its version.
func (o *OSV) Name() string {
	out, err := exec.Command(o.binary(), "--version").Output()
	if err != nil {
		return "osv-scanner"
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "osv-scanner version: "); ok {
			return "osv-scanner " + v
		}
	}
	return "osv-scanner"
}

// DBVersion is, offline, a fingerprint of the database files (names,
// sizes and times), so that syncing new ones rescans; online it is the
// day, since osv.dev changes all the time.
func (o *OSV) DBVersion(ctx context.Context) (string, error) {
	if o.DBPath == "" {
		return "osv.dev@" + time.Now().UTC().Format("2006-01-02"), nil
	}
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(o.DBPath, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		fmt.Fprintf(h, "%s %d %d\n", path, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("osv database %s: %w", o.DBPath, err)
	}
	if n == 0 {
		return "", fmt.Errorf("osv database %s holds no files (want osv-scalibr/<Ecosystem>/all.zip)", o.DBPath)
	}
	return "local@" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Scan runs osv-scanner on a docker-archive tar. It exits 1 when it
// finds vulnerabilities, which is a result, not a failure.
func (o *OSV) Scan(ctx context.Context, path string) (Report, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"scan", "image", "--archive", path, "--format", "json"}
	if o.DBPath != "" {
		// --offline also stops the base-image lookup on deps.dev, which
		// fails without network and fails the scan.
		args = append(args, "--offline", "--offline-vulnerabilities", "--local-db-path", o.DBPath)
	}
	cmd := exec.CommandContext(ctx, o.binary(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return Report{}, fmt.Errorf("osv-scanner: %v: %s", err, tail(stderr.String(), 500))
	}
	findings, err := parseOSV(stdout.Bytes())
	if err != nil {
		return Report{}, fmt.Errorf("osv-scanner output: %w (stderr: %s)", err, tail(stderr.String(), 300))
	}
	return Report{Findings: findings, Raw: stdout.Bytes(), RawMediaType: "application/vnd.osv-scanner.results.v2+json"}, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// osvOutput is the part of osv-scanner's JSON output read here.
type osvOutput struct {
	Results []struct {
		Packages []struct {
			Package struct {
				Name      string `json:"name"`
				Version   string `json:"version"`
				Ecosystem string `json:"ecosystem"`
			} `json:"package"`
			Vulnerabilities []struct {
				ID      string   `json:"id"`
				Aliases []string `json:"aliases"`
				Summary string   `json:"summary"`
			} `json:"vulnerabilities"`
			Groups []struct {
				IDs         []string `json:"ids"`
				Aliases     []string `json:"aliases"`
				MaxSeverity string   `json:"max_severity"`
			} `json:"groups"`
		} `json:"packages"`
	} `json:"results"`
}

// parseOSV reads findings: one per vulnerability group of each package,
// named by its first id, its severity from the group's max_severity (a
// CVSS base score osv-scanner computed).
func parseOSV(out []byte) ([]Finding, error) {
	var o osvOutput
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return nil, err
	}
	var fs []Finding
	for _, r := range o.Results {
		for _, p := range r.Packages {
			summaries := map[string]string{}
			for _, v := range p.Vulnerabilities {
				summaries[v.ID] = v.Summary
			}
			for _, g := range p.Groups {
				if len(g.IDs) == 0 {
					continue
				}
				score, err := strconv.ParseFloat(g.MaxSeverity, 64)
				known := err == nil && g.MaxSeverity != ""
				aliases := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(g.IDs[1:]), g.Aliases...))))
				aliases = slices.DeleteFunc(aliases, func(a string) bool { return a == g.IDs[0] })
				fs = append(fs, Finding{ID: g.IDs[0], Aliases: aliases, Severity: SeverityOf(score, known), Score: score,
					Package: p.Package.Name, Version: p.Package.Version, Ecosystem: p.Package.Ecosystem, Summary: summaries[g.IDs[0]]})
			}
		}
	}
	return fs, nil
}
