// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/ha-registry/ha-registry/internal/schema"
	"github.com/ha-registry/ha-registry/internal/store"
	"github.com/ha-registry/ha-registry/internal/testenv"
	"github.com/ha-registry/ha-registry/registry"
	"github.com/ha-registry/ha-registry/s3store"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// clock is a controllable clock: passes read it, tests move it.
type clock struct {
	mu    sync.Mutex
	start time.Time
	now   time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock by d.
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// since renders t as an offset from the clock's start, for states.
func (c *clock) since(t time.Time) string {
	return "t+" + t.Sub(c.start).Round(time.Hour).String()
}

// env is a registry (the real store on a real PostgreSQL and S3) with
// names for the digests a test made, so that states read as text.
type env struct {
	t     *testing.T
	db    *pgxpool.Pool
	s3    *s3store.Store
	st    *store.Store
	clock *clock
	names map[string]string // digest or upload id -> name
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := schema.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.S3(t)
	s3, err := s3store.New(ctx, s3store.Config{Endpoint: cfg.Endpoint, Region: cfg.Region, Bucket: cfg.Bucket,
		PathStyle: true, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, Root: "gc/test"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(db, s3, store.Config{AutoMount: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return &env{t: t, db: db, s3: s3, st: st, clock: &clock{start: now, now: now}, names: map[string]string{}}
}

// opts are a pass's options on the env's clock: the default grace and
// upload TTL, untagged manifests kept.
func (e *env) opts() Options {
	return Options{DB: e.db, S3: e.s3, Grace: DefaultGrace, UploadTTL: DefaultUploadTTL, Now: e.clock.Now, Logger: zerolog.Nop()}
}

// pass runs a pass and fails the test if it does not complete.
func (e *env) pass(opts Options) Summary {
	e.t.Helper()
	s, err := Run(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("gc: %v", err)
	}
	if s.Skipped != "" {
		e.t.Fatalf("gc skipped: %s", s.Skipped)
	}
	return s
}

// name gives d (or an upload id) a name in states.
func (e *env) name(id, name string) { e.names[id] = name }

// n is the name of a digest or id, or the id itself.
func (e *env) n(id string) string {
	if n, ok := e.names[id]; ok {
		return n
	}
	return id
}

// blob pushes content into repo as a layer named name.
func (e *env) blob(repo, name, content string) ocispec.Descriptor {
	e.t.Helper()
	d := digest.FromString(content)
	if _, err := e.st.PutBlob(context.Background(), repo, d, int64(len(content)), strings.NewReader(content)); err != nil {
		e.t.Fatalf("pushing %s: %v", name, err)
	}
	e.name(d.String(), name)
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: int64(len(content))}
}

// manifest pushes v as a manifest of repo named name, tagged with tags.
func (e *env) manifest(repo, name, mediaType string, v any, tags ...string) ocispec.Descriptor {
	e.t.Helper()
	content, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	d := digest.FromBytes(content)
	e.name(d.String(), name)
	if _, err := e.st.PutManifest(context.Background(), registry.ManifestPut{Repo: repo, MediaType: mediaType,
		Content: content, Digest: d, Tags: tags}); err != nil {
		e.t.Fatalf("pushing %s: %v", name, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}
}

// image pushes an image of repo: a config of its own named name-config,
// the layers, and the manifest named name.
func (e *env) image(repo, name string, tags []string, layers ...ocispec.Descriptor) ocispec.Descriptor {
	e.t.Helper()
	return e.imageWith(repo, name, tags, nil, layers...)
}

// imageWith is image with a subject.
func (e *env) imageWith(repo, name string, tags []string, subject *ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Descriptor {
	e.t.Helper()
	config := e.blob(repo, name+"-config", `{"architecture":"amd64","os":"linux","name":"`+name+`"}`)
	config.MediaType = ocispec.MediaTypeImageConfig
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	return e.manifest(repo, name, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: layers, Subject: subject}, tags...)
}

// index pushes an image index of repo named name listing children.
func (e *env) index(repo, name string, tags []string, children ...ocispec.Descriptor) ocispec.Descriptor {
	e.t.Helper()
	return e.manifest(repo, name, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children}, tags...)
}

// state is the whole persistent state, one sorted line a row or key,
// with names for digests and upload ids and times relative to the clock:
// every index table, the gc tables, every bucket key and every multipart
// upload in progress.
func (e *env) state() string {
	e.t.Helper()
	ctx := context.Background()
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	e.query(`SELECT 'blob', digest, '' FROM blobs`, func(r []string) { add("blob %s", e.n(r[1])) })
	e.query(`SELECT r.name, x.digest, '' FROM repository_blobs x JOIN repositories r ON r.id = x.repository_id`,
		func(r []string) { add("blob-link %s %s", r[0], e.n(r[1])) })
	e.query(`SELECT r.name, m.digest, coalesce(m.subject, '') FROM manifests m JOIN repositories r ON r.id = m.repository_id`,
		func(r []string) {
			if r[2] != "" {
				add("manifest %s %s subject=%s", r[0], e.n(r[1]), e.n(r[2]))
			} else {
				add("manifest %s %s", r[0], e.n(r[1]))
			}
		})
	e.query(`SELECT r.name, x.parent_digest, x.child_digest FROM manifest_children x JOIN repositories r ON r.id = x.repository_id`,
		func(r []string) { add("child %s %s > %s", r[0], e.n(r[1]), e.n(r[2])) })
	e.query(`SELECT r.name, x.manifest_digest, x.blob_digest FROM manifest_blobs x JOIN repositories r ON r.id = x.repository_id`,
		func(r []string) { add("reference %s %s > %s", r[0], e.n(r[1]), e.n(r[2])) })
	e.query(`SELECT r.name, t.name, t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id`,
		func(r []string) { add("tag %s:%s %s", r[0], r[1], e.n(r[2])) })
	e.query(`SELECT r.name, u.id::text, u.size::text FROM uploads u JOIN repositories r ON r.id = u.repository_id`,
		func(r []string) { add("upload %s %s size=%s", r[0], e.n(r[1]), r[2]) })
	rows, err := e.db.Query(ctx, `SELECT u.kind, coalesce(r.name, '-'), u.digest, u.since FROM gc_unreferenced u
		LEFT JOIN repositories r ON r.id = u.repository_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	var kind, repo, dg string
	var since time.Time
	if _, err := pgx.ForEachRow(rows, []any{&kind, &repo, &dg, &since}, func() error {
		add("mark %s %s %s since %s", kind, repo, e.n(dg), e.clock.since(since))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	var key string
	rows, err = e.db.Query(ctx, `SELECT key, first_seen FROM gc_unknown_objects`)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&key, &since}, func() error {
		add("unknown %s since %s", e.key(key), e.clock.since(since))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s3.List(ctx, "", func(o s3store.ObjectInfo) error {
		add("object %s", e.key(o.Key))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s3.ListUploads(ctx, "", func(u s3store.UploadInfo) error {
		add("multipart %s", e.key(u.Key))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// query calls fn with each row of a three-column text query.
func (e *env) query(q string, fn func([]string)) {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), q)
	if err != nil {
		e.t.Fatal(err)
	}
	var a, b, c string
	if _, err := pgx.ForEachRow(rows, []any{&a, &b, &c}, func() error {
		fn([]string{a, b, c})
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// key renders a bucket key by what it holds, with names.
func (e *env) key(k string) string {
	info, ok := e.s3.Layout().ParseKey(k)
	if !ok {
		return "unrecognised " + strings.TrimPrefix(k, strings.TrimSuffix(e.s3.Layout().BlobsPrefix(), "blobs/"))
	}
	d := e.n(info.Digest.String())
	switch info.Kind {
	case s3store.KeyBlobData:
		return "data " + d
	case s3store.KeyLayerLink, s3store.KeyRevisionLink:
		return fmt.Sprintf("%s %s %s", info.Kind, info.Repo, d)
	case s3store.KeyTagCurrentLink:
		return fmt.Sprintf("%s %s:%s", info.Kind, info.Repo, info.Tag)
	case s3store.KeyTagIndexLink:
		return fmt.Sprintf("%s %s:%s %s", info.Kind, info.Repo, info.Tag, d)
	}
	return fmt.Sprintf("%s %s %s", info.Kind, info.Repo, e.n(info.UploadID))
}

// want compares the state with lines (in any order, duplicates once),
// failing the test on a difference.
func (e *env) want(step string, lines ...string) {
	e.t.Helper()
	lines = slices.Clone(lines)
	slices.Sort(lines)
	lines = slices.Compact(lines)
	if diff := cmp.Diff(strings.Join(lines, "\n"), e.state()); diff != "" {
		e.t.Fatalf("%s: state (-want +got):\n%s", step, diff)
	}
}

// removed renders what a pass removed, one line per item, sorted.
func (e *env) removed(s Summary) []string {
	out := []string{}
	for _, it := range s.Removed {
		line := string(it.Kind)
		for _, f := range []string{it.Repo, e.n(it.Digest), e.n(it.ID)} {
			if f != "" {
				line += " " + f
			}
		}
		if it.Key != "" {
			line += " key=" + e.key(it.Key)
		}
		for _, o := range it.Objects {
			line += " [" + e.key(o) + "]"
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// wantRemoved compares what a pass removed with lines (in any order).
func (e *env) wantRemoved(step string, s Summary, lines ...string) {
	e.t.Helper()
	if lines == nil {
		lines = []string{}
	}
	slices.Sort(lines)
	if diff := cmp.Diff(lines, e.removed(s)); diff != "" {
		e.t.Fatalf("%s: removed (-want +got):\n%s", step, diff)
	}
}

// imageState is the state lines of image name in repo (pushed by image),
// tagged tags, with layers: its rows, those of its config and layers, and
// their objects.
func imageState(repo, name string, tags []string, layers ...string) []string {
	out := []string{"manifest " + repo + " " + name, "blob " + name, "object data " + name,
		"object revision-link " + repo + " " + name}
	for _, b := range append([]string{name + "-config"}, layers...) {
		out = append(out, "blob "+b, "object data "+b, "blob-link "+repo+" "+b, "object layer-link "+repo+" "+b,
			"reference "+repo+" "+name+" > "+b)
	}
	for _, t := range tags {
		out = append(out, "tag "+repo+":"+t+" "+name, "object tag-current-link "+repo+":"+t,
			"object tag-index-link "+repo+":"+t+" "+name)
	}
	return out
}

// linkState is the state lines of blob b linked into repo.
func linkState(repo, b string) []string {
	return []string{"blob " + b, "object data " + b, "blob-link " + repo + " " + b, "object layer-link " + repo + " " + b}
}

// join concatenates groups of state lines.
func join(groups ...[]string) []string { return slices.Concat(groups...) }

// pushImage pushes an image of repo tagged v1 with a config of its own
// named name-config over layers, and returns the manifest push's error.
func pushImage(e *env, repo, name string, layers ...ocispec.Descriptor) error {
	config := e.blob(repo, name+"-config", `{"architecture":"amd64","os":"linux","name":"`+name+`"}`)
	config.MediaType = ocispec.MediaTypeImageConfig
	content, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: layers})
	if err != nil {
		return err
	}
	d := digest.FromBytes(content)
	e.name(d.String(), name)
	_, err = e.st.PutManifest(context.Background(), registry.ManifestPut{Repo: repo, MediaType: ocispec.MediaTypeImageManifest,
		Content: content, Digest: d, Tags: []string{"v1"}})
	return err
}

// waitForLockWaits waits until at least n sessions of the env's database
// wait for a lock (a row, a transaction or an advisory lock).
func (e *env) waitForLockWaits(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			e.t.Error(err)
			return
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Errorf("%d sessions wait for a lock after 10s, want %d", waiting, n)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// digestOf is the digest a test named name.
func (e *env) digestOf(name string) string {
	for d, n := range e.names {
		if n == name {
			return d
		}
	}
	e.t.Fatalf("no digest is named %s", name)
	return ""
}

// indexState is the state lines of index name in repo, tagged tags,
// listing children (whose own lines are the caller's).
func indexState(repo, name string, tags []string, children ...string) []string {
	out := []string{"manifest " + repo + " " + name, "blob " + name, "object data " + name,
		"object revision-link " + repo + " " + name}
	for _, c := range children {
		out = append(out, "child "+repo+" "+name+" > "+c)
	}
	for _, t := range tags {
		out = append(out, "tag "+repo+":"+t+" "+name, "object tag-current-link "+repo+":"+t,
			"object tag-index-link "+repo+":"+t+" "+name)
	}
	return out
}

// withSubject marks manifest name of repo in lines as a referrer of
// subject.
func withSubject(lines []string, repo, name, subject string) []string {
	out := slices.Clone(lines)
	for i, l := range out {
		if l == "manifest "+repo+" "+name {
			out[i] += " subject=" + subject
		}
	}
	return out
}

// otherPool is a second pool on the env's database, as another replica
// has.
func (e *env) otherPool() *pgxpool.Pool {
	e.t.Helper()
	pool, err := pgxpool.New(context.Background(), e.db.Config().ConnString())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	return pool
}
