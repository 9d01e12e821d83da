// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/ha-registry/ha-registry/registry"
)

// getManifest serves a manifest by tag or digest, with the media type it
// was pushed with. Accept is not used to refuse anything: we hold one
// representation and serve it, which every client handles.
//
// end-3: GET/HEAD /v2/<name>/manifests/<reference> → 200, 404.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, req request) error {
	m, err := s.store.GetManifest(r.Context(), req.repo, req.tag, req.digest)
	if err != nil {
		return err
	}
	// By digest, answer in the client's algorithm; by tag, the digest the
	// manifest was pushed under.
	d := m.Digest
	if req.digest != "" {
		d = req.digest
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Content)))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		if _, err := w.Write(m.Content); err != nil {
			return err
		}
	}
	return nil
}

// putManifest stores a manifest under its digest and tags it.
//
// end-7: PUT /v2/<name>/manifests/<reference> → 201, 400, 404, 413.
// Pushed by tag, the digest is sha256 of the body. Pushed by digest, the
// body must hash to it in its algorithm (400 DIGEST_INVALID otherwise),
// and tag=<tag> query parameters tag it in the same request ("Pushing
// Manifests with Tags"), each echoed in an OCI-Tag header. A manifest with
// a subject is answered with OCI-Subject ("Pushing Manifests with
// Subject"). Bodies over [registry.MaxManifestSize] are 413.
// refusedBodyDiscard bounds what is read and dropped of a manifest body
// refused for its size before the answer.
const refusedBodyDiscard = 8 * registry.MaxManifestSize

// refuseTooLarge answers a manifest body over the limit with 413. Many
// clients (Python's http.client, for one) send the whole body before
// they read the answer: a connection closed while the body still comes
// shows them a broken pipe instead of the reason. So the rest of the body
// is read and dropped first, up to refusedBodyDiscard and at the body-rate
// rule's pace; past that the connection closes after the answer.
func refuseTooLarge(r *http.Request) error {
	_, _ = io.CopyN(io.Discard, r.Body, refusedBodyDiscard)
	return registry.ErrManifestTooLarge.WithMessage("manifest is larger than %d bytes", registry.MaxManifestSize)
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, req request) error {
	if r.ContentLength > registry.MaxManifestSize {
		return refuseTooLarge(r)
	}
	release, err := s.manifestMemory(r)
	if err != nil {
		return err
	}
	defer release()
	content, err := readManifestBody(r)
	if err != nil {
		return manifestBodyError(err)
	}
	if len(content) > registry.MaxManifestSize {
		return refuseTooLarge(r)
	}

	var (
		d    digest.Digest
		tags []string
	)
	if req.digest != "" {
		d = req.digest.Algorithm().FromBytes(content)
		if d != req.digest {
			return registry.ErrDigestInvalid.WithMessage("manifest digest is %s, not %s", d, req.digest)
		}
		for _, t := range r.URL.Query()["tag"] {
			if !registry.ValidTag(t) {
				return errTagInvalid(t)
			}
			tags = append(tags, t)
		}
	} else {
		d = digest.SHA256.FromBytes(content)
		tags = []string{req.tag}
	}

	mediaType := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	m, err := s.store.PutManifest(r.Context(), registry.ManifestPut{
		Repo:      req.repo,
		MediaType: mediaType,
		Content:   content,
		Digest:    d,
		Tags:      tags,
	})
	if err != nil {
		return err
	}

	h := w.Header()
	h.Set("Location", "/v2/"+req.repo+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if m != nil && m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest.String())
	}
	if req.digest != "" {
		for _, t := range tags {
			h.Add("OCI-Tag", t)
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// readManifestBody reads a manifest PUT's body into memory: a buffer of
// the declared length, so that what it holds is what [Server.manifestMemory]
// reserved, or, without Content-Length, up to one byte over the largest
// manifest.
func readManifestBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n >= 0 {
		buf := make([]byte, n)
		_, err := io.ReadFull(r.Body, buf)
		return buf, err
	}
	return io.ReadAll(io.LimitReader(r.Body, registry.MaxManifestSize+1))
}

// manifestBodyError answers a manifest body that could not be read. The
// minimum rate's refusal keeps its message and status under the
// manifest's code; anything else (the idle timeout, a body cut short) is
// the client's, MANIFEST_INVALID, not an internal error.
func manifestBodyError(err error) error {
	var e *registry.Error
	if errors.As(err, &e) {
		return &registry.Error{Code: registry.CodeManifestInvalid, Message: e.Message, Status: e.Status}
	}
	return fmt.Errorf("%w: %w", registry.ErrManifestInvalid.WithMessage("reading the request body failed"), err)
}

// deleteManifest deletes a manifest (by digest) or only a tag (by tag).
//
// end-9: DELETE /v2/<name>/manifests/<reference> → 202, 400, 404, 405.
func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, req request) error {
	var err error
	if req.digest != "" {
		err = s.store.DeleteManifest(r.Context(), req.repo, req.digest)
	} else {
		err = s.store.DeleteTag(r.Context(), req.repo, req.tag)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
