// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ProcStatus reads a field in kB (VmRSS, VmHWM) from /proc/<pid>/status
// and returns it in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// RSSSampler records the highest VmRSS of a process while it runs. VmHWM
// would do for one run only: it never comes down between runs.
type RSSSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// SampleRSS starts sampling pid's VmRSS every interval.
func SampleRSS(pid int, interval time.Duration) *RSSSampler {
	s := &RSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if v, err := ProcStatus(pid, "VmRSS"); err == nil && v > s.peak.Load() {
			s.peak.Store(v)
		}
	}
	sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the peak in bytes.
func (s *RSSSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}
