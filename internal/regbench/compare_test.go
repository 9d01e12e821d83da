// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/s3store"
)

// Target names in the comparison.
const (
	ours         = "ours"
	oursRedirect = "ours-redirect"
	distribution = "distribution"
	directS3     = "s3"
)

// compareRows are the measurements, each on the targets it compares.
var compareRows = []struct {
	workload string
	targets  []string
}{
	{"push-monolithic", []string{ours, distribution}},
	{"s3-multipart", []string{directS3}},
	{"s3-multipart-copy", []string{directS3}},
	{"push-chunked-5MiB", []string{ours, distribution}},
	{"push-chunked-16MiB", []string{ours, distribution}},
	{"pull-streamed", []string{ours, distribution}},
	{"s3-get", []string{directS3}},
	{"pull-redirected", []string{oursRedirect}},
	{"manifest-get-tag", []string{ours, distribution}},
	{"manifest-head-tag", []string{ours, distribution}},
	{"manifest-get-digest", []string{ours, distribution}},
	{"manifest-head-digest", []string{ours, distribution}},
	{"tags-list", []string{ours, distribution}},
	{"referrers", []string{ours, distribution}},
	{"catalog", []string{ours, distribution}},
}

func envDefault(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestCompare is `make bench-compare`: it runs this registry and CNCF
// distribution on one S3 server and PostgreSQL, measures every workload on
// both in turns (A, B, then B, A) for REGBENCH_ROUNDS rounds, and prints
// the medians, the ratios and the targets of docs/performance.md. Set
// REGBENCH_COMPARE=1 to run it; REGBENCH_DURATION, REGBENCH_CLIENTS,
// REGBENCH_BLOB_SIZE (bytes), REGBENCH_WORKLOADS and REGBENCH_OUT (a file
// for the report) tune it.
func TestCompare(t *testing.T) {
	if os.Getenv("REGBENCH_COMPARE") == "" {
		t.Skip("set REGBENCH_COMPARE=1 (make bench-compare) to run the comparison")
	}
	duration, err := time.ParseDuration(envDefault("REGBENCH_DURATION", "3s"))
	if err != nil {
		t.Fatal(err)
	}
	rounds, _ := strconv.Atoi(envDefault("REGBENCH_ROUNDS", "3"))
	var levels []int
	for _, f := range strings.Split(envDefault("REGBENCH_CLIENTS", "1,8,32"), ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		levels = append(levels, n)
	}
	cfg := DefaultConfig
	if v := os.Getenv("REGBENCH_BLOB_SIZE"); v != "" {
		if cfg.BlobSize, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	only := os.Getenv("REGBENCH_WORKLOADS")
	ctx := t.Context()

	env := newCompareEnv(t)
	report := &strings.Builder{}
	fmt.Fprintf(report, "machine: %s\n", machine())
	fmt.Fprintf(report, "rounds %d, %v per run, clients %v, blob size %d bytes\n\n", rounds, duration, levels, cfg.BlobSize)

	// Start to ready and idle memory, before any load.
	ready := env.startToReady(5)
	fmt.Fprintf(report, "start to ready (median of 5): %v\n", Round(ready))
	oursProc := env.startOurs(false)
	time.Sleep(2 * time.Second)
	idle, _ := ProcStatus(oursProc.pid, "VmRSS")
	fmt.Fprintf(report, "idle RSS after start: %s\n", MiB(idle))
	redirectProc := env.startOurs(true)
	distProc := env.startDistribution()

	fixtures := map[string]*Fixture{}
	fixtures[ours], err = Prepare(ctx, NewTarget(ours, oursProc.url, oursProc.pid), env.s3, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fixtures[directS3] = fixtures[ours]
	fixtures[oursRedirect] = fixtures[ours].WithTarget(NewTarget(oursRedirect, redirectProc.url, redirectProc.pid))
	fixtures[distribution], err = Prepare(ctx, NewTarget(distribution, distProc.url, distProc.pid), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	idleAfter, _ := ProcStatus(oursProc.pid, "VmRSS")
	fmt.Fprintf(report, "RSS after preparing the content: %s\n\n", MiB(idleAfter))

	var results []Result
	for round := range rounds {
		for _, row := range compareRows {
			if only != "" && !slices.Contains(strings.Split(only, ","), row.workload) {
				continue
			}
			w, _ := WorkloadByName(row.workload)
			for _, c := range levels {
				targets := slices.Clone(row.targets)
				if round%2 == 1 {
					slices.Reverse(targets)
				}
				for _, name := range targets {
					f := fixtures[name]
					pid := 0
					if f.target != nil && name != directS3 {
						pid = f.target.PID
					}
					r := Run(ctx, w.Op(f), RunOptions{Clients: c, Duration: duration, PID: pid})
					r.Workload, r.Target = row.workload, name
					WriteResult(os.Stderr, r)
					results = append(results, r)
					env.deletePushed(f, name)
				}
			}
		}
	}
	// Memory: each blob workload at each level on a fresh process, whose
	// VmHWM is then that workload's peak alone (Go keeps freed memory a
	// while, so a shared process would carry one run's peak into the next).
	memory := map[string]map[int]int64{}
	for _, wl := range []string{"push-monolithic", "push-chunked-5MiB", "push-chunked-16MiB", "pull-streamed"} {
		if only != "" && !slices.Contains(strings.Split(only, ","), wl) {
			continue
		}
		memory[wl] = map[int]int64{}
		w, _ := WorkloadByName(wl)
		for _, c := range levels {
			p := env.startOurs(false)
			f := fixtures[ours].WithTarget(NewTarget(ours, p.url, p.pid))
			r := Run(ctx, w.Op(f), RunOptions{Clients: c, Duration: duration})
			env.deletePushed(f, ours)
			memory[wl][c], _ = ProcStatus(p.pid, "VmHWM")
			if r.Errors > 0 {
				t.Errorf("%s at %d clients on a fresh process: %s", wl, c, r.FirstError)
			}
			p.stop()
		}
	}

	cmp := Compare(results)
	fmt.Fprintln(report, "## ours against distribution (medians)")
	fmt.Fprintln(report)
	cmp.WriteTable(report, ours, distribution, levels)
	fmt.Fprintln(report)
	fmt.Fprintln(report, "## targets")
	fmt.Fprintln(report)
	cmp.WriteTargets(report, ours, oursRedirect, distribution, directS3, levels, Targets{StartToReady: ready, IdleRSS: idle, Memory: memory})
	fmt.Fprintf(report, "\nafter the runs: ours VmHWM %s, distribution VmHWM %s\n",
		hwm(oursProc.pid), hwm(distProc.pid))
	fmt.Println(report.String())
	if out := os.Getenv("REGBENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, r := range results {
		if r.Errors > 0 && !(r.Target == distribution && r.Workload == "referrers") {
			t.Errorf("%s on %s at %d clients: %d errors, first: %s", r.Workload, r.Target, r.Clients, r.Errors, r.FirstError)
		}
	}
}

func hwm(pid int) string {
	v, _ := ProcStatus(pid, "VmHWM")
	return MiB(v)
}

// machine describes the CPU, core count and load for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%s, %d CPUs, load average at start %s", model, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
}

// compareEnv is the servers the comparison runs: PostgreSQL, the S3
// server, and the registries as processes.
type compareEnv struct {
	t     *testing.T
	dir   string
	bin   string
	dist  string
	env   []string
	s3cfg testenv.S3Config
	s3    *s3store.Store
	oursL s3store.Layout
	distL s3store.Layout
}

func newCompareEnv(t *testing.T) *compareEnv {
	dir := t.TempDir()
	e := &compareEnv{t: t, dir: dir, bin: filepath.Join(dir, "registry"), dist: testenv.Tool(t, "distribution"),
		oursL: s3store.Layout{Root: "ha-registry"}, distL: s3store.Layout{Root: "distribution"}}
	build := exec.Command("go", "build", "-trimpath", "-o", e.bin, "../../cmd/registry")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the registry: %v\n%s", err, out)
	}
	e.s3cfg = testenv.S3(t)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "REGISTRY_DATABASE_URL="+testenv.Postgres(t),
		"REGISTRY_S3_ENDPOINT="+e.s3cfg.Endpoint, "REGISTRY_S3_BUCKET="+e.s3cfg.Bucket,
		"REGISTRY_S3_REGION="+e.s3cfg.Region, "REGISTRY_S3_PATH_STYLE=true", "REGISTRY_S3_PREFIX="+e.oursL.Root,
		"AWS_ACCESS_KEY_ID="+e.s3cfg.AccessKey, "AWS_SECRET_ACCESS_KEY="+e.s3cfg.SecretKey,
		"REGISTRY_LOG_LEVEL=warn")
	if out, err := e.command(e.bin, "migrate").CombinedOutput(); err != nil {
		t.Fatalf("registry migrate: %v\n%s", err, out)
	}
	var err error
	e.s3, err = s3store.New(t.Context(), s3store.Config{Endpoint: e.s3cfg.Endpoint, Region: e.s3cfg.Region,
		Bucket: e.s3cfg.Bucket, PathStyle: true, AccessKey: e.s3cfg.AccessKey, SecretKey: e.s3cfg.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *compareEnv) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = e.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// process is a registry the comparison started.
type process struct {
	url  string
	pid  int
	stop func() // ends it and waits
}

// start runs cmd, waits until url+ready answers 200, and stops it when
// the test ends. It returns how long readiness took.
func (e *compareEnv) start(cmd *exec.Cmd, url, ready string) (process, time.Duration) {
	e.t.Helper()
	logs, err := os.CreateTemp(e.dir, "log-")
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	began := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := sync.OnceFunc(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	e.t.Cleanup(stop)
	client := &http.Client{Timeout: time.Second}
	for time.Since(began) < 30*time.Second {
		if resp, err := client.Get(url + ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return process{url: url, pid: cmd.Process.Pid, stop: stop}, time.Since(began)
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logs.Name())
			e.t.Fatalf("%s exited:\n%s", cmd.Path, b)
		case <-time.After(2 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(logs.Name())
	e.t.Fatalf("%s never became ready:\n%s", cmd.Path, b)
	return process{}, 0
}

// startOurs starts `registry serve`, streaming or redirecting blob GETs.
// The benchmark's clients all come from one address: the per-client
// upload limit is lifted, and uploads beyond the pool queue without bound
// as they did before the limits, so that figures stay comparable.
func (e *compareEnv) startOurs(redirect bool) process {
	addr := testenv.FreeAddr(e.t)
	cmd := e.command(e.bin, "serve", "--listen", addr, "--upload-conns-per-client", "100000", "--upload-conn-wait", "0")
	if redirect {
		cmd.Args = append(cmd.Args, "--s3-redirect")
	}
	p, _ := e.start(cmd, "http://"+addr, "/readyz")
	return p
}

// startToReady is the median time from exec to /readyz answering 200, over
// n starts of a migrated database.
func (e *compareEnv) startToReady(n int) time.Duration {
	var ds []time.Duration
	for range n {
		addr := testenv.FreeAddr(e.t)
		cmd := e.command(e.bin, "serve", "--listen", addr)
		p, d := e.start(cmd, "http://"+addr, "/readyz")
		p.stop()
		ds = append(ds, d)
	}
	return median(ds)
}

// startDistribution runs CNCF distribution with its S3 driver on the same
// bucket, under the root directory "distribution", streaming blobs.
func (e *compareEnv) startDistribution() process {
	addr := testenv.FreeAddr(e.t)
	cmd := testenv.DistributionCommand(e.t, e.dist, e.dir, addr, e.distL.Root, e.s3cfg, e.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, _ := e.start(cmd, "http://"+addr, "/v2/")
	return p
}

// deletePushed removes the objects of the blobs a push workload stored, so
// that the disk does not fill over a long comparison. The index of ours
// keeps their rows; nothing reads them again.
func (e *compareEnv) deletePushed(f *Fixture, target string) {
	ctx := context.Background()
	for _, d := range f.TakePushed() {
		var key string
		switch target {
		case ours, oursRedirect:
			key = e.oursL.BlobData(d)
		case distribution:
			key = e.distL.BlobData(d)
		default:
			key = S3PushKey(d)
		}
		if err := e.s3.Delete(ctx, key); err != nil {
			e.t.Logf("deleting %s: %v", key, err)
		}
	}
}
