// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// postUpload starts a blob upload, stores a whole blob, or mounts one.
//
// end-4a: POST /v2/<name>/blobs/uploads/ → 202 with the session's Location.
// end-4b: POST /v2/<name>/blobs/uploads/?digest=<digest> with the blob as
// body → 201 ("Single POST").
// end-11: POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other> → 201
// when mounted; when the blob is not there to mount, the spec lets us fall
// back to a new session, 202. Without from=, we mount from any repository
// holding the blob when AutoMount is on ("Mounting a blob without
// specifying the from parameter").
func (s *Server) postUpload(w http.ResponseWriter, r *http.Request, req request) error {
	ctx := r.Context()
	q := r.URL.Query()

	if m := q.Get("mount"); m != "" {
		d, err := registry.ParseDigest(m)
		if err != nil {
			return err
		}
		from := q.Get("from")
		if from != "" {
			if err := registry.ValidateName(from); err != nil {
				return err
			}
		}
		// With authentication on, a blob is mounted only from a repository
		// the caller may read; otherwise the client uploads it, as the
		// spec's fallback allows, and learns nothing of other repositories.
		switch {
		case s.auth != nil && from == "":
		case from != "" && !s.canPull(ctx, from):
		case from != "" || s.autoMount:
			_, ok, err := s.store.MountBlob(ctx, req.repo, from, d)
			if err != nil {
				return err
			}
			if ok {
				blobCreated(w, req.repo, d)
				return nil
			}
		}
		return s.startUpload(w, r, req)
	}

	if dig := q.Get("digest"); dig != "" {
		d, err := registry.ParseDigest(dig)
		if err != nil {
			return err
		}
		release, err := s.uploadSlot(ctx)
		if err != nil {
			return err
		}
		defer release()
		// ContentLength is -1 when the client streams: the store then
		// learns the size at the end.
		if _, err := s.store.PutBlob(ctx, req.repo, d, r.ContentLength, r.Body); err != nil {
			return err
		}
		blobCreated(w, req.repo, d)
		return nil
	}

	return s.startUpload(w, r, req)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, req request) error {
	us, err := s.store.StartUpload(r.Context(), req.repo)
	if err != nil {
		return err
	}
	return uploadAccepted(w, req.repo, us, http.StatusAccepted)
}

// getUpload reports how much of an upload the registry holds, so a client
// can resume.
//
// end-13: GET /v2/<name>/blobs/uploads/<reference> → 204 with Range and
// Location, 404.
func (s *Server) getUpload(w http.ResponseWriter, r *http.Request, req request) error {
	us, err := s.store.UploadStatus(r.Context(), req.repo, req.uploadID)
	if err != nil {
		return err
	}
	return uploadAccepted(w, req.repo, us, http.StatusNoContent)
}

// patchUpload appends a chunk, or streams the whole blob when the request
// has no Content-Range.
//
// end-5: PATCH /v2/<name>/blobs/uploads/<reference> → 202, 404, 416 for a
// chunk that does not start where the upload ends ("Chunks MUST be
// uploaded in order").
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, req request) error {
	start, body, err := chunk(r)
	if err != nil {
		return err
	}
	release, err := s.uploadSlot(r.Context())
	if err != nil {
		return err
	}
	defer release()
	us, err := s.store.AppendUpload(r.Context(), req.repo, req.uploadID, start, body)
	if err != nil {
		return err
	}
	return uploadAccepted(w, req.repo, us, http.StatusAccepted)
}

// putUpload closes an upload as blob <digest>, with an optional last chunk
// as body.
//
// end-6: PUT /v2/<name>/blobs/uploads/<reference>?digest=<digest> → 201,
// 400 (a digest that does not match the content), 404, 416.
func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, req request) error {
	dig := r.URL.Query().Get("digest")
	if dig == "" {
		return registry.ErrDigestInvalid.WithMessage("the digest query parameter is required to close an upload")
	}
	d, err := registry.ParseDigest(dig)
	if err != nil {
		return err
	}
	start, body, err := chunk(r)
	if err != nil {
		return err
	}
	release, err := s.uploadSlot(r.Context())
	if err != nil {
		return err
	}
	defer release()
	if _, err := s.store.CommitUpload(r.Context(), req.repo, req.uploadID, start, body, d); err != nil {
		return err
	}
	blobCreated(w, req.repo, d)
	return nil
}

// deleteUpload cancels an upload.
//
// DELETE /v2/<name>/blobs/uploads/<reference> → 204, 404 (the spec's
// "Canceling an upload").
func (s *Server) deleteUpload(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.store.CancelUpload(r.Context(), req.repo, req.uploadID); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadAccepted answers with where and how far an upload is: Location for
// the next request, Range "0-<last byte>" ("0-0" while empty, as Docker's
// registry does and clients expect) and the session id.
func uploadAccepted(w http.ResponseWriter, repo string, us registry.UploadSession, status int) error {
	if !validUploadID(us.ID) {
		return fmt.Errorf("store returned upload id %q, which cannot travel in a URL", us.ID)
	}
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/uploads/"+us.ID)
	h.Set("Range", fmt.Sprintf("0-%d", max(us.Offset-1, 0)))
	h.Set("Docker-Upload-UUID", us.ID)
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}

// blobCreated answers a stored or mounted blob: 201 with its pullable
// Location and its digest in the algorithm the client used.
func blobCreated(w http.ResponseWriter, repo string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// chunk reads where a PATCH or PUT chunk says it starts (-1: it does not
// say) and returns its body, checked against the range's length.
//
// A Content-Range whose length disagrees with Content-Length is refused
// before the store sees anything (400 SIZE_INVALID). When the client sends
// a range but streams without Content-Length, the body is held to the
// range's length as it is read.
func chunk(r *http.Request) (start int64, body io.Reader, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, r.Body, nil
	}
	first, last, err := parseContentRange(cr)
	if err != nil {
		return 0, nil, err
	}
	n := last - first + 1
	switch {
	case r.ContentLength >= 0 && r.ContentLength != n:
		return 0, nil, registry.ErrSizeInvalid.WithMessage("Content-Range %q covers %d bytes but Content-Length is %d", cr, n, r.ContentLength)
	case r.ContentLength < 0:
		return first, &exactReader{r: r.Body, left: n}, nil
	}
	return first, r.Body, nil
}

// parseContentRange parses a chunk's Content-Range. The spec's form is
// "<start>-<end>", inclusive; some clients write the RFC 9110 form
// "bytes <start>-<end>/<size|*>" or "bytes=<start>-<end>", which mean the
// same and are accepted. A malformed header is 400 BLOB_UPLOAD_INVALID; an
// end before the start is 416.
func parseContentRange(h string) (first, last int64, err error) {
	spec := strings.TrimSpace(h)
	if s, ok := strings.CutPrefix(spec, "bytes="); ok {
		spec = s
	} else if s, ok := strings.CutPrefix(spec, "bytes "); ok {
		spec, _, _ = strings.Cut(s, "/")
	}
	a, b, ok := strings.Cut(spec, "-")
	if ok {
		first, ok = parseNonNegative(a)
	}
	if ok {
		last, ok = parseNonNegative(b)
	}
	if !ok {
		return 0, 0, registry.ErrBlobUploadInvalid.WithMessage("invalid Content-Range %q: want <start>-<end>", h)
	}
	if last < first {
		return 0, 0, registry.ErrRangeInvalid.WithMessage("Content-Range %q ends before it starts", h)
	}
	return first, last, nil
}

// exactReader yields exactly left bytes of r and fails with SIZE_INVALID
// when r has fewer or more, so that a store never takes a chunk that does
// not match its range.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// One more byte would mean the body is longer than the range.
		var b [1]byte
		n, err := io.ReadFull(e.r, b[:])
		if n > 0 {
			return 0, registry.ErrSizeInvalid.WithMessage("the chunk is longer than its Content-Range")
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, registry.ErrSizeInvalid.WithMessage("the chunk is shorter than its Content-Range")
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
