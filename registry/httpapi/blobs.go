// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ha-registry/ha-registry/registry"
)

// copyBuffers hold the buffers blobs stream through. At 256 KiB rather
// than io.Copy's 32 KiB, a streamed pull makes an eighth of the read and
// write system calls, which is where its CPU goes.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// getBlob serves a blob, whole or a byte range, or redirects to where the
// client can fetch it itself.
//
// end-2: GET/HEAD /v2/<name>/blobs/<digest> → 200 (206 for a Range), 404.
// The spec's "Fetch Blob Part" lets a Range header (RFC 9110 section 14)
// ask for part of a blob; an unsatisfiable range is 416.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, req request) error {
	ctx := r.Context()
	info, err := s.store.StatBlob(ctx, req.repo, req.digest)
	if err != nil {
		return err
	}
	h := w.Header()
	// Report the digest the client asked by: the algorithm is its choice.
	h.Set("Docker-Content-Digest", req.digest.String())
	h.Set("ETag", `"`+req.digest.String()+`"`)
	h.Set("Accept-Ranges", "bytes")

	if r.Method == http.MethodHead {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}

	if red, ok := registry.Ability[registry.BlobRedirector](s.store); ok {
		url, ok, err := red.BlobURL(ctx, req.repo, req.digest)
		if err != nil {
			return err
		}
		if ok {
			// Clients resend Range to the new location, so ranges work
			// there too.
			h.Set("Location", url)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}

	start, length, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		return err
	}
	if !partial {
		start, length = 0, info.Size
	}
	body, err := s.store.OpenBlob(ctx, req.repo, req.digest, start, length)
	if err != nil {
		return err
	}
	defer body.Close()

	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, info.Size))
		status = http.StatusPartialContent
	}
	w.WriteHeader(status)
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(w, body, *buf); err != nil {
		return fmt.Errorf("streaming blob %s: %w", req.digest, err)
	}
	return nil
}

// deleteBlob unlinks a blob from the repository.
//
// end-10: DELETE /v2/<name>/blobs/<digest> → 202, 404, 405.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.store.DeleteBlob(r.Context(), req.repo, req.digest); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// parseRange resolves a Range header against a blob of size bytes. It
// answers partial=false when the whole blob should be served: no header, a
// unit other than bytes, a malformed header, or several ranges (which we
// may ignore, RFC 9110 section 14.2). A range that starts past the end, an
// empty suffix, or a last position before the first is
// [registry.ErrRangeInvalid] (416).
func parseRange(header string, size int64) (start, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, nil
	}
	unsatisfiable := registry.ErrRangeInvalid.WithMessage("range %q not satisfiable for a blob of %d bytes", spec, size)

	if first == "" {
		// bytes=-N: the last N bytes.
		n, ok := parseNonNegative(last)
		if !ok {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, unsatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}

	from, ok := parseNonNegative(first)
	if !ok {
		return 0, 0, false, nil
	}
	to := size - 1
	if last != "" {
		if to, ok = parseNonNegative(last); !ok {
			return 0, 0, false, nil
		}
		if to < from {
			return 0, 0, false, unsatisfiable
		}
		to = min(to, size-1)
	}
	if from >= size {
		return 0, 0, false, unsatisfiable
	}
	return from, to - from + 1, true, nil
}

// parseNonNegative parses a decimal count: digits only, no sign.
func parseNonNegative(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
