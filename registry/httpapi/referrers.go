// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"errors"
	"net/http"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ha-registry/ha-registry/registry"
)

// getReferrers lists the manifests whose subject is a digest, as an image
// index.
//
// end-12a: GET /v2/<name>/referrers/<digest> → 200, 400.
// end-12b: GET /v2/<name>/referrers/<digest>?artifactType=<type> → 200,
// with OCI-Filters-Applied: artifactType ("Listing Referrers"). An unknown
// subject, or a repository we have never seen, is an empty index, never a
// 404: the spec wants clients to tell "no referrers" from "no referrers
// API".
func (s *Server) getReferrers(w http.ResponseWriter, r *http.Request, req request) error {
	artifactType, err := queryText(r.URL.Query(), "artifactType", errArtifactTypeInvalid)
	if err != nil {
		return err
	}
	descs, err := s.store.Referrers(r.Context(), req.repo, req.digest, artifactType)
	if err != nil && !errors.Is(err, registry.ErrNameUnknown) {
		return err
	}
	if artifactType != "" {
		// The store filters; filtering again costs nothing and keeps the
		// header's promise whatever the store does.
		descs = slices.DeleteFunc(descs, func(d ocispec.Descriptor) bool { return d.ArtifactType != artifactType })
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	index := ocispec.Index{
		MediaType: registry.MediaTypeOCIIndex,
		Manifests: nonNil(descs),
	}
	index.SchemaVersion = 2
	writeJSON(w, r, http.StatusOK, registry.MediaTypeOCIIndex, index)
	return nil
}
