// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package policy

import (
	"math"
	"strings"
	"testing"
)

// TestParseSize proves that ParseSize reads IEC, SI and bare byte counts
// and refuses, with a telling message, what is not a size.
func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // a phrase of the error; "" when the size is valid
	}{
		{in: "10GiB", want: 10 << 30},
		{in: "500MB", want: 500_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "1024", want: 1024},
		{in: " 7 B", want: 7},
		{in: "0", want: 0},
		{in: "10 GiB", want: 10 << 30},
		{in: "3KB", want: 3000},
		{in: "2TB", want: 2_000_000_000_000},
		{in: "1TiB", want: 1 << 40},
		{in: "1PiB", want: 1 << 50},
		{in: "0.5GiB", want: 1 << 29},
		{in: "8191PiB", want: 8191 << 50},
		{in: "", wantErr: "is not a size"},
		{in: "   ", wantErr: "is not a size"},
		{in: "GiB", wantErr: "is not a size"},
		{in: "-1", wantErr: "negative"},
		{in: "-1.5KiB", wantErr: "negative"},
		{in: "ten", wantErr: "is not a size"},
		{in: "10gib", wantErr: "is not a size"},
		{in: "NaN", wantErr: "is not a size"},
		{in: "Inf", wantErr: "is not a size"},
		{in: "1e400GiB", wantErr: "is not a size"},
		{in: "9999999999PiB", wantErr: "too large"},
		{in: "8192PiB", wantErr: "too large"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: "1e30B", wantErr: "too large"},
		{in: "8192.5PiB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseSize(%q) = %d, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseSize(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "\""+tt.in+"\"") {
					t.Errorf("ParseSize(%q) error = %q, want it to quote the input", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSize(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// TestFormatSize proves that FormatSize writes bytes below 1 KiB whole and
// larger sizes in the largest IEC unit with one decimal.
func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{10 << 30, "10.0 GiB"},
		{1 << 50, "1.0 PiB"},
		{math.MaxInt64, "8.0 EiB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestFormatSizeParsesBack proves that what FormatSize writes ParseSize
// reads back to the same count, for sizes one decimal states exactly.
func TestFormatSizeParsesBack(t *testing.T) {
	for _, n := range []int64{0, 7, 1023, 1024, 1536, 10 << 30, 3 << 40, 1 << 50} {
		s := FormatSize(n)
		got, err := ParseSize(s)
		if err != nil {
			t.Errorf("ParseSize(FormatSize(%d) = %q): %v", n, s, err)
			continue
		}
		if got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d", n, s, got)
		}
	}
}
