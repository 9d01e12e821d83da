// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import "strings"

// Manifest media types the registry stores and serves.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"

	// Docker schema1 is refused: it is signed in a way that ties bytes to
	// a repository and tag, is deprecated by every client, and cannot be
	// indexed like the others.
	MediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

	// MediaTypeEmptyJSON is the OCI empty descriptor's media type.
	MediaTypeEmptyJSON = "application/vnd.oci.empty.v1+json"
)

// MaxManifestSize is the largest manifest accepted (4 MiB, the spec's
// suggested minimum that registries support and what clients expect).
const MaxManifestSize = 4 << 20

// IsIndexMediaType reports whether mt is a manifest list or image index.
func IsIndexMediaType(mt string) bool {
	return mt == MediaTypeOCIIndex || mt == MediaTypeDockerList
}

// IsNonDistributable reports whether a layer media type marks a layer that
// the registry is not expected to hold (OCI non-distributable or Docker
// foreign layers), so that a manifest referencing it is accepted without it.
func IsNonDistributable(mt string) bool {
	return strings.Contains(mt, ".nondistributable.") ||
		mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
}
