// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package e2e

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/s3store"
)

// The helpers here run the real `registry` binary as separate processes,
// the way operators deploy it, so that signals, exit codes, the death of a
// process and two releases side by side are what they are in production.

const registryPackage = "github.com/ha-registry/ha-registry/cmd/registry"

// buildRegistry builds the registry binary from this tree into the test's
// temporary directory. upgrade builds "the next release": the upgradetest
// tag compiles in one more (expand-only) migration, and the version says
// "next".
func buildRegistry(t *testing.T, upgrade bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "registry")
	args := []string{"build", "-o", out}
	if upgrade {
		args = append(args, "-tags", "upgradetest", "-ldflags", "-X main.version=next")
	}
	cmd := exec.Command("go", append(args, registryPackage)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// cluster is one registry deployment: a fresh database and bucket that the
// replica processes share, and the directory their logs go to.
type cluster struct {
	dbURL string
	s3    testenv.S3Config
	env   []string
	logs  string

	mu    sync.Mutex
	procs []*replica // every replica process ever started, for the logs
	seq   int
}

// newCluster creates the database and bucket. On failure, the end of every
// process's log is printed.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	s3 := testenv.S3(t)
	c := &cluster{dbURL: testenv.Postgres(t), s3: s3, logs: t.TempDir()}
	c.env = append(os.Environ(),
		"REGISTRY_DATABASE_URL="+c.dbURL,
		"REGISTRY_S3_ENDPOINT="+s3.Endpoint,
		"REGISTRY_S3_BUCKET="+s3.Bucket,
		"REGISTRY_S3_REGION="+s3.Region,
		"REGISTRY_S3_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID="+s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3.SecretKey,
	)
	t.Cleanup(func() {
		if t.Failed() {
			c.printLogs(t)
		}
	})
	return c
}

// schemaVersion is the newest migration applied to the cluster's database.
func (c *cluster) schemaVersion(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatalf("connecting to the cluster's database: %v", err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatalf("reading the schema version: %v", err)
	}
	return v
}

// multipartUploads lists the S3 multipart uploads in progress in the
// cluster's bucket.
func (c *cluster) multipartUploads(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	s3, err := s3store.New(ctx, s3store.Config{
		Endpoint: c.s3.Endpoint, Region: c.s3.Region, Bucket: c.s3.Bucket, PathStyle: true,
		AccessKey: c.s3.AccessKey, SecretKey: c.s3.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = s3.ListUploads(ctx, "", func(u s3store.UploadInfo) error {
		keys = append(keys, u.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// replica is one registry process.
type replica struct {
	name string
	addr string
	log  string
	cmd  *exec.Cmd

	exited  chan struct{}
	waitErr error // valid once exited is closed
}

// drainDelay is how long a replica keeps serving after SIGTERM. It must
// exceed haproxy's time to take a failing replica out (inter + fastinter
// in deploy/haproxy/haproxy.cfg, 1.25s) with room for a slow CI machine.
const drainDelay = 3 * time.Second

// shutdownTimeout bounds the in-flight requests after the drain.
const shutdownTimeout = 20 * time.Second

// startReplica runs bin serving the cluster on addr, migrating first as a
// new release would, and waits until it is ready.
func (c *cluster) startReplica(t *testing.T, name, bin, addr string, serveFlags ...string) *replica {
	t.Helper()
	c.mu.Lock()
	c.seq++
	r := &replica{name: name, addr: addr, log: filepath.Join(c.logs, fmt.Sprintf("%02d-%s.log", c.seq, name)), exited: make(chan struct{})}
	c.procs = append(c.procs, r)
	c.mu.Unlock()

	f, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--log-format", "console", "--log-level", "debug", "serve", "--listen", addr, "--migrate"}
	if len(serveFlags) == 0 {
		serveFlags = []string{"--drain-delay", drainDelay.String(), "--shutdown-timeout", shutdownTimeout.String()}
	}
	r.cmd = exec.Command(bin, append(args, serveFlags...)...)
	r.cmd.Env = c.env
	r.cmd.Stdout, r.cmd.Stderr = f, f
	// Dies with the test process rather than outliving a crashed run.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		f.Close()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	r.waitReady(t, 60*time.Second)
	return r
}

// waitReady waits for /readyz to answer 200.
func (r *replica) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.exited:
			t.Fatalf("%s exited before it was ready: %v", r.name, r.waitErr)
		default:
		}
		if resp, err := client.Get("http://" + r.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v", r.name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (r *replica) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", r.name, err)
	}
}

// waitExit waits up to timeout for the process to end and returns its
// exit code (-1 when a signal ended it).
func (r *replica) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after it was told to stop", r.name, timeout)
	}
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
		return 0
	case errors.As(r.waitErr, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", r.name, r.waitErr)
	return -1
}

// chunkRequests scrapes the replica's /metrics for the chunks (PATCH on an
// upload) it has answered with 202.
func (r *replica) chunkRequests(t *testing.T) float64 {
	t.Helper()
	return r.metric(t, "registry_http_requests_total", `method="PATCH"`, `route="upload"`, `status="202"`)
}

// metric scrapes the replica's /metrics and sums the samples of name whose
// labels include every one of labels.
func (r *replica) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + r.addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", r.name, err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", r.name, line, err)
		}
		n += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scraping %s: %v", r.name, err)
	}
	return n
}

// uploadRequestRE finds the upload session requests in a replica's
// console log.
var uploadRequestRE = regexp.MustCompile(`method=(PATCH|PUT) path=/v2/\S+/blobs/uploads/([0-9a-f-]{36}) .*status=20[12]`)

// uploadSpread reads every replica's log and returns, for each upload
// session, how many replica processes answered its PATCH and PUT requests.
func (c *cluster) uploadSpread(t *testing.T) map[string]int {
	t.Helper()
	c.mu.Lock()
	procs := append([]*replica(nil), c.procs...)
	c.mu.Unlock()
	seen := map[string]map[string]bool{}
	for _, p := range procs {
		for _, m := range uploadRequestRE.FindAllStringSubmatch(readLog(p.log), -1) {
			if seen[m[2]] == nil {
				seen[m[2]] = map[string]bool{}
			}
			seen[m[2]][p.log] = true
		}
	}
	spread := map[string]int{}
	for id, procs := range seen {
		spread[id] = len(procs)
	}
	return spread
}

// ansiRE matches the colour escapes of the console log format.
var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// readLog returns a process's log without colours.
func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return ansiRE.ReplaceAllString(string(b), "")
}

// grepLogs returns the lines of every replica's log that contain any of
// needles, to show what the registry did with a failed request.
func (c *cluster) grepLogs(needles []string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, p := range c.procs {
		for _, line := range strings.Split(readLog(p.log), "\n") {
			for _, n := range needles {
				if n != "" && strings.Contains(line, n) {
					fmt.Fprintf(&b, "%s: %s\n", filepath.Base(p.log), line)
					break
				}
			}
		}
	}
	return b.String()
}

// printLogs shows the end of every process's log, without the probes'
// and scrapes' lines, and every warning and error.
func (c *cluster) printLogs(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		var keep, problems []string
		for _, line := range strings.Split(strings.TrimSpace(readLog(p.log)), "\n") {
			if strings.Contains(line, "route=health") || strings.Contains(line, "route=metrics") {
				continue
			}
			keep = append(keep, line)
			if strings.Contains(line, " WRN ") || strings.Contains(line, " ERR ") || strings.Contains(line, "panic") {
				problems = append(problems, line)
			}
		}
		keep = keep[max(0, len(keep)-40):]
		problems = problems[max(0, len(problems)-40):]
		t.Logf("==== %s (%s): warnings and errors:\n%s\n==== last lines:\n%s",
			p.name, filepath.Base(p.log), strings.Join(problems, "\n"), strings.Join(keep, "\n"))
	}
}

// balancer is haproxy running deploy/haproxy/haproxy.cfg, the file users
// copy, in front of three replicas.
type balancer struct {
	addr      string // where clients connect
	statsAddr string
	log       string
}

// haproxyConfig is the shipped example configuration.
const haproxyConfig = "../../deploy/haproxy/haproxy.cfg"

// startBalancer runs haproxy in the foreground with the replicas' addresses
// in the environment, as the configuration's header describes.
func startBalancer(t *testing.T, replicas [3]string) *balancer {
	t.Helper()
	bin := testenv.Tool(t, "haproxy")
	cfg, err := filepath.Abs(haproxyConfig)
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{addr: testenv.FreeAddr(t), statsAddr: testenv.FreeAddr(t), log: filepath.Join(t.TempDir(), "haproxy.log")}
	env := append(os.Environ(), "REGISTRY_LB_LISTEN="+b.addr, "REGISTRY_LB_STATS_LISTEN="+b.statsAddr)
	for i, r := range replicas {
		env = append(env, fmt.Sprintf("REGISTRY_REPLICA_%d=%s", i+1, r))
	}
	check := exec.Command(bin, "-c", "-f", cfg)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c -f %s: %v\n%s", cfg, err, out)
	}
	f, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", cfg, "-db")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGUSR1) // soft stop
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b.printLog(t)
		}
	})
	for i := range replicas {
		b.waitServer(t, fmt.Sprintf("r%d", i+1), "UP", 30*time.Second)
	}
	return b
}

// stats returns haproxy's CSV statistics, one map from column to value
// per proxy, server, frontend and backend row.
func (b *balancer) stats() ([]map[string]string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + b.statsAddr + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy stats: %v: %q", err, body)
	}
	var out []map[string]string
	for _, row := range rows[1:] {
		m := map[string]string{}
		for i, v := range row {
			if i < len(rows[0]) {
				m[rows[0][i]] = v
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// statsRow returns the statistics of one row: a server, or the FRONTEND
// or BACKEND summary of a proxy.
func (b *balancer) statsRow(t *testing.T, proxy, name string) map[string]string {
	t.Helper()
	rows, err := b.stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r["pxname"] == proxy && r["svname"] == name {
			return r
		}
	}
	t.Fatalf("haproxy stats have no row %s/%s", proxy, name)
	return nil
}

// serverStatus returns haproxy's view of a replica: "UP", "DOWN", or a
// transition such as "UP 1/2".
func (b *balancer) serverStatus(server string) (string, error) {
	rows, err := b.stats()
	if err != nil {
		return "", err
	}
	for _, r := range rows {
		if r["pxname"] == "replicas" && r["svname"] == server {
			return r["status"], nil
		}
	}
	return "", fmt.Errorf("haproxy stats have no server %s", server)
}

// waitServer waits until haproxy reports server in state want and returns
// when it first saw it.
func (b *balancer) waitServer(t *testing.T, server, want string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		st, err := b.serverStatus(server)
		if err == nil && st == want {
			return time.Now()
		}
		last = st
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy: %s is %q after %v, want %q", server, last, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// haproxySuccessRE matches the log line of a request that succeeded.
var haproxySuccessRE = regexp.MustCompile(` (200|201|202|204) \d+ - - `)

func (b *balancer) printLog(t *testing.T) {
	data, _ := os.ReadFile(b.log)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var keep []string
	for _, l := range lines {
		// Successful requests are the bulk; the rest tells the story.
		if !haproxySuccessRE.MatchString(l) {
			keep = append(keep, l)
		}
	}
	t.Logf("==== haproxy: lines other than successful requests:\n%s", strings.Join(keep[max(0, len(keep)-60):], "\n"))
}

// refusesConnections reports whether nothing listens on addr any more.
func refusesConnections(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	conn.Close()
	return false
}
