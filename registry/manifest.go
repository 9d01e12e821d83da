// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	"bytes"
	"encoding/json"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is what the registry needs to know of a manifest to index it:
// the blobs and child manifests it references and the subject it refers to.
type Manifest struct {
	// MediaType is the manifest's media type.
	MediaType string
	// ArtifactType is what the referrers API reports: the manifest's
	// artifactType, or for an image manifest without one its config's media
	// type.
	ArtifactType string
	// Subject is the manifest this one refers to, or nil.
	Subject *ocispec.Descriptor
	// Blobs are the config and layers the registry must hold, in manifest
	// order; non-distributable layers are left out.
	Blobs []ocispec.Descriptor
	// Children are the manifests an index lists.
	Children []ocispec.Descriptor
	// Annotations are the manifest's annotations.
	Annotations map[string]string
}

// rawManifest is the union of the JSON shapes we accept, so one decode
// classifies the document.
type rawManifest struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
	FSLayers      json.RawMessage      `json:"fsLayers"`
}

// ParseManifest validates a manifest pushed with Content-Type contentType
// and extracts its references. Errors are [ErrManifestInvalid] with a
// message saying what is wrong; Docker schema1 is refused.
func ParseManifest(contentType string, content []byte) (*Manifest, error) {
	if len(content) > MaxManifestSize {
		return nil, ErrManifestTooLarge.WithMessage("manifest is larger than %d bytes", MaxManifestSize)
	}
	if contentType == MediaTypeDockerSchema1 || contentType == MediaTypeDockerSchema1Signed {
		return nil, errSchema1
	}
	var raw rawManifest
	dec := json.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&raw); err != nil {
		return nil, ErrManifestInvalid.WithMessage("manifest is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, ErrManifestInvalid.WithMessage("manifest has data after its JSON document")
	}
	if raw.SchemaVersion == nil {
		return nil, ErrManifestInvalid.WithMessage("manifest has no schemaVersion")
	}
	if *raw.SchemaVersion == 1 || raw.FSLayers != nil {
		return nil, errSchema1
	}
	if *raw.SchemaVersion != 2 {
		return nil, ErrManifestInvalid.WithMessage("unsupported schemaVersion %d", *raw.SchemaVersion)
	}

	mt, err := manifestMediaType(contentType, &raw)
	if err != nil {
		return nil, err
	}
	m := &Manifest{MediaType: mt, ArtifactType: raw.ArtifactType, Annotations: raw.Annotations}
	if raw.Subject != nil {
		if err := checkDescriptor("subject", raw.Subject); err != nil {
			return nil, err
		}
		m.Subject = raw.Subject
	}

	if IsIndexMediaType(mt) {
		if raw.Config != nil || raw.Layers != nil {
			return nil, ErrManifestInvalid.WithMessage("an index has no config or layers")
		}
		for i := range raw.Manifests {
			if err := checkDescriptor("manifests entry", &raw.Manifests[i]); err != nil {
				return nil, err
			}
		}
		m.Children = raw.Manifests
		return m, nil
	}

	if raw.Manifests != nil {
		return nil, ErrManifestInvalid.WithMessage("an image manifest has no manifests list")
	}
	if raw.Config == nil {
		return nil, ErrManifestInvalid.WithMessage("image manifest has no config")
	}
	if err := checkDescriptor("config", raw.Config); err != nil {
		return nil, err
	}
	if m.ArtifactType == "" {
		m.ArtifactType = raw.Config.MediaType
	}
	m.Blobs = append(m.Blobs, *raw.Config)
	for i := range raw.Layers {
		l := &raw.Layers[i]
		if err := checkDescriptor("layer", l); err != nil {
			return nil, err
		}
		if !IsNonDistributable(l.MediaType) {
			m.Blobs = append(m.Blobs, *l)
		}
	}
	return m, nil
}

var errSchema1 = ErrManifestInvalid.WithMessage("Docker schema1 manifests are not supported; push with a current client, which writes Docker schema2 or OCI manifests")

// manifestMediaType settles the media type from the Content-Type header and
// the document's own mediaType field, which must agree when both are set.
func manifestMediaType(contentType string, raw *rawManifest) (string, error) {
	known := func(mt string) bool {
		switch mt {
		case MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList:
			return true
		}
		return false
	}
	if raw.MediaType != "" {
		if !known(raw.MediaType) {
			return "", ErrManifestInvalid.WithMessage("unsupported manifest media type %q", raw.MediaType)
		}
		if known(contentType) && contentType != raw.MediaType {
			return "", ErrManifestInvalid.WithMessage("Content-Type %q does not match the manifest's mediaType %q", contentType, raw.MediaType)
		}
		return raw.MediaType, nil
	}
	if known(contentType) {
		return contentType, nil
	}
	// Neither names a type we know: OCI allows mediaType to be absent, so
	// classify by shape.
	switch {
	case raw.Manifests != nil:
		return MediaTypeOCIIndex, nil
	case raw.Config != nil:
		return MediaTypeOCIManifest, nil
	}
	return "", ErrManifestInvalid.WithMessage("unsupported manifest media type %q", contentType)
}

func checkDescriptor(what string, d *ocispec.Descriptor) error {
	if d.MediaType == "" {
		return ErrManifestInvalid.WithMessage("%s descriptor has no mediaType", what)
	}
	if d.Size < 0 {
		return ErrManifestInvalid.WithMessage("%s descriptor has a negative size", what)
	}
	if _, err := digest.Parse(string(d.Digest)); err != nil {
		return ErrManifestInvalid.WithMessage("%s descriptor has an invalid digest %q", what, d.Digest)
	}
	return nil
}
