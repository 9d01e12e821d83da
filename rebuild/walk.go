// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package rebuild

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/ha-registry/ha-registry/s3store"
)

// The walk lists the bucket in parallel without knowing its shape in
// advance. Every prefix is first listed flat, as one stream of pages. A
// prefix that turns out to hold more than one page of keys is split into
// sub-prefixes that the layout allows there (algorithm directories, hex
// digits, tag characters, repository path components), and those are listed
// in parallel, split again if they are large in turn. A small bucket thus
// costs a handful of requests; a large one is spread over as many parallel
// streams as it has pages. The page already read is not wasted: its keys
// are emitted, sub-prefixes it covered entirely are not listed again, and
// the one it covered in part skips what it already emitted.

// splitAfter is how many keys a prefix may have before it is split: one
// ListObjectsV2 page. Tests lower it to split small buckets.
var splitAfter = 1000

// maxHexSplit bounds how many hex digits of a digest the walk splits on;
// 16^6 prefixes is far beyond any bucket.
const maxHexSplit = 6

// rule says how a prefix may be split.
type rule int

const (
	ruleNone      rule = iota // list as one stream
	ruleRepoTree              // repositories/ or a repository path component: its directories
	ruleBlobAlgs              // blobs/: its algorithm directories
	ruleBlobFan               // blobs/<alg>/: its two-hex-digit directories
	ruleBlobDir               // blobs/<alg>/<xy>/: by the digits after xy
	ruleLinkAlgs              // _layers/ or _manifests/revisions/: its algorithm directories
	ruleHex                   // by one more hex digit
	ruleManifests             // _manifests/: revisions/ and tags/
	ruleTags                  // _manifests/tags/ or a tag name's beginning: by one more character
)

const (
	hexDigits = "0123456789abcdef"
	// tagChars is every character of the tag grammar, in byte order.
	tagChars = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)

// listTask lists one prefix. Keys up to and including after were already
// emitted by the task that split it.
type listTask struct {
	prefix string
	rule   rule
	after  string
}

// walker lists a bucket's registry keys in parallel and hands every
// object to emit, from several goroutines at once.
type walker struct {
	s3      *s3store.Store
	workers int
	emit    func(context.Context, s3store.ObjectInfo) error
	// roots are the prefixes to list; the whole layout when nil.
	roots []listTask

	mu     sync.Mutex
	cond   *sync.Cond
	tasks  []listTask
	active int
	err    error
}

// walk lists every registry key below layout's root and returns when all
// are emitted or the first error happened.
func (w *walker) walk(ctx context.Context, layout s3store.Layout) error {
	w.cond = sync.NewCond(&w.mu)
	w.tasks = w.roots
	if w.tasks == nil {
		w.tasks = []listTask{
			{prefix: layout.BlobsPrefix(), rule: ruleBlobAlgs},
			{prefix: layout.RepositoriesPrefix(), rule: ruleRepoTree},
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range max(w.workers, 1) {
		wg.Go(func() { w.work(ctx, cancel) })
	}
	wg.Wait()
	return w.err
}

// work runs tasks until none is left or one failed.
func (w *walker) work(ctx context.Context, cancel context.CancelFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.tasks) == 0 && w.active > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.tasks) == 0 || w.err != nil {
			w.cond.Broadcast()
			return
		}
		t := w.tasks[len(w.tasks)-1]
		w.tasks = w.tasks[:len(w.tasks)-1]
		w.active++
		w.mu.Unlock()
		children, err := w.list(ctx, t)
		w.mu.Lock()
		w.active--
		if err != nil && w.err == nil {
			w.err = err
			cancel()
		}
		w.tasks = append(w.tasks, children...)
		w.cond.Broadcast()
	}
}

// errSplit stops a listing that has grown past one page.
var errSplit = errors.New("split")

// list emits the keys of t's prefix, or the first page of them and returns
// the sub-prefixes that cover the rest.
func (w *walker) list(ctx context.Context, t listTask) ([]listTask, error) {
	seen, last := 0, ""
	err := w.s3.List(ctx, t.prefix, func(o s3store.ObjectInfo) error {
		if t.rule != ruleNone && seen == splitAfter {
			return errSplit
		}
		seen++
		last = o.Key
		if o.Key <= t.after {
			return nil
		}
		return w.emit(ctx, o)
	})
	if !errors.Is(err, errSplit) {
		return nil, err
	}
	subs, err := w.split(ctx, t)
	if err != nil {
		return nil, err
	}
	var out []listTask
	for _, s := range subs {
		switch {
		case strings.HasPrefix(last, s.prefix):
			s.after = last // partly listed: skip what was emitted
		case s.prefix < last:
			continue // entirely within the page already emitted
		}
		out = append(out, s)
	}
	return out, nil
}

// split returns the sub-prefixes that together hold every key of t's
// prefix that is registry content (see parseKey).
func (w *walker) split(ctx context.Context, t listTask) ([]listTask, error) {
	p := t.prefix
	switch t.rule {
	case ruleRepoTree:
		dirs, err := w.s3.ListPrefixes(ctx, p)
		if err != nil {
			return nil, err
		}
		var out []listTask
		for _, d := range dirs {
			switch name := strings.TrimSuffix(d[len(p):], "/"); {
			case name == "_layers":
				out = append(out, listTask{prefix: d, rule: ruleLinkAlgs})
			case name == "_manifests":
				out = append(out, listTask{prefix: d, rule: ruleManifests})
			case name == "_uploads":
				// Upload sessions are transient and never indexed.
			case strings.HasPrefix(name, "_"):
				out = append(out, listTask{prefix: d})
			default:
				out = append(out, listTask{prefix: d, rule: ruleRepoTree})
			}
		}
		return out, nil
	case ruleBlobAlgs, ruleBlobFan, ruleLinkAlgs:
		next := map[rule]rule{ruleBlobAlgs: ruleBlobFan, ruleBlobFan: ruleBlobDir, ruleLinkAlgs: ruleHex}[t.rule]
		dirs, err := w.s3.ListPrefixes(ctx, p)
		if err != nil {
			return nil, err
		}
		out := make([]listTask, len(dirs))
		for i, d := range dirs {
			out[i] = listTask{prefix: d, rule: next}
		}
		return out, nil
	case ruleBlobDir:
		// blobs/<alg>/<xy>/ holds <xy…>/data: go on with the full hex.
		fan := p[strings.LastIndex(p[:len(p)-1], "/")+1 : len(p)-1]
		return extend(p+fan, hexDigits, ruleHex), nil
	case ruleHex:
		next := ruleHex
		if len(p)-strings.LastIndex(p, "/")-1 >= maxHexSplit {
			next = ruleNone
		}
		return extend(p, hexDigits, next), nil
	case ruleManifests:
		return []listTask{{prefix: p + "revisions/", rule: ruleLinkAlgs}, {prefix: p + "tags/", rule: ruleTags}}, nil
	case ruleTags:
		out := extend(p, tagChars, ruleTags)
		if !strings.HasSuffix(p, "/") {
			// A complete tag name: its current link and its history.
			out = append(out, listTask{prefix: p + "/"})
		}
		return out, nil
	}
	return nil, nil
}

// extend returns one task per character of chars, appended to p.
func extend(p, chars string, r rule) []listTask {
	out := make([]listTask, len(chars))
	for i := range len(chars) {
		out[i] = listTask{prefix: p + chars[i:i+1], rule: r}
	}
	return out
}
