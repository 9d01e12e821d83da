// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// errAbandoned stops a cache write whose client stopped reading: what was
// stored so far is discarded, never half-kept.
var errAbandoned = errors.New("the client stopped reading before the end of the blob")

// cacheReader streams upstream's body to a client while PutBlob stores
// the same bytes. A store that fails stops storing, not the client's
// stream; a stream cut short (upstream or client) stores nothing, since
// PutBlob commits only a whole blob with the right digest.
type cacheReader struct {
	body    io.ReadCloser
	pw      *io.PipeWriter
	storing bool
	eof     bool
	done    chan error
	release func()
	after   func()
	failed  func(error)
}

// tee starts storing blob d of repo from body as the client reads it.
func (s *Store) tee(ctx context.Context, repo string, d digest.Digest, size int64, body io.ReadCloser, release func()) io.ReadCloser {
	pr, pw := io.Pipe()
	c := &cacheReader{body: body, pw: pw, storing: true, done: make(chan error, 1), release: release}
	// Not the request's context: a client that hangs up right after the
	// last byte must not cancel the commit of a whole blob. A client that
	// stops earlier abandons the store through the pipe instead.
	sctx := context.WithoutCancel(ctx)
	go func() {
		_, err := s.local.PutBlob(sctx, repo, d, size, pr)
		pr.CloseWithError(err) // unblocks a write after a failure
		c.done <- err
	}()
	c.failed = func(err error) {
		s.log.Warn().Err(err).Str("repo", repo).Str("digest", d.String()).Msg("caching a pulled-through blob failed; the next pull fetches it again")
	}
	c.after = func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.promote(pctx, repo)
	}
	return c
}

func (c *cacheReader) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if n > 0 && c.storing {
		if _, werr := c.pw.Write(p[:n]); werr != nil {
			c.storing = false // the store failed; the client's stream goes on
		}
	}
	if errors.Is(err, io.EOF) {
		c.eof = true
	}
	return n, err
}

// Close ends the store: committed when the whole body was read, abandoned
// otherwise; it waits for the store, then releases the fetch lock and
// promotes what the blob completes.
func (c *cacheReader) Close() error {
	if c.eof {
		c.pw.Close()
	} else {
		c.pw.CloseWithError(errAbandoned)
	}
	err := c.body.Close()
	stored := <-c.done
	c.release()
	switch {
	case stored == nil:
		c.after()
	case !errors.Is(stored, errAbandoned):
		c.failed(stored)
	}
	return err
}
