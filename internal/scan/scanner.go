// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package scan

import (
	"context"
	"fmt"
	"strings"
)

// Severity is a finding's severity, from its CVSS base score.
type Severity string

// The severities, most severe first.
const (
	Critical Severity = "CRITICAL"
	High     Severity = "HIGH"
	Medium   Severity = "MEDIUM"
	Low      Severity = "LOW"
	Unknown  Severity = "UNKNOWN"
)

// Severities lists them, most severe first.
var Severities = []Severity{Critical, High, Medium, Low, Unknown}

// Rank orders severities: Critical 4 down to Unknown 0.
func (s Severity) Rank() int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// SeverityOf maps a CVSS base score to its qualitative rating (CVSS v3
// specification, section 5); ok false means no score is known.
func SeverityOf(score float64, ok bool) Severity {
	switch {
	case !ok:
		return Unknown
	case score >= 9:
		return Critical
	case score >= 7:
		return High
	case score >= 4:
		return Medium
	case score > 0:
		return Low
	}
	return Unknown
}

// ParseSeverity reads a severity name, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToUpper(strings.TrimSpace(s)))
	for _, k := range Severities {
		if v == k {
			return v, nil
		}
	}
	return "", fmt.Errorf("%q is not a severity (CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN)", s)
}

// Finding is one vulnerability of one package.
type Finding struct {
	ID        string   `json:"id"`
	Aliases   []string `json:"aliases,omitempty"`
	Severity  Severity `json:"severity"`
	Score     float64  `json:"score,omitempty"`
	Package   string   `json:"package"`
	Version   string   `json:"version"`
	Ecosystem string   `json:"ecosystem"`
	Summary   string   `json:"summary,omitempty"`
}

// Report is what a scanner found in an image.
type Report struct {
	Scanner   string
	DBVersion string
	Findings  []Finding
	// Raw is the scanner's own output, stored in the bucket.
	Raw []byte
	// RawMediaType is Raw's media type.
	RawMediaType string
}

// Scanner scans an image archive (a docker-archive tar). Trivy, Grype
// or a Harbor-style adapter can implement it next to OSV-Scanner.
type Scanner interface {
	// Name identifies the scanner and its version in results.
	Name() string
	// DBVersion identifies the vulnerability data the scanner uses now;
	// results from other data are scanned again.
	DBVersion(ctx context.Context) (string, error)
	// Scan scans the archive at path.
	Scan(ctx context.Context, path string) (Report, error)
}
