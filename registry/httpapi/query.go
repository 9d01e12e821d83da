// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package httpapi

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ha-registry/ha-registry/registry"
)

// The errors for a query parameter that is not text. The spec has no
// code for a bad query parameter, so each names what the parameter
// stands for, always with 400:
//   - catalog last= is a repository name: NAME_INVALID.
//   - tags/list last= is a tag: MANIFEST_INVALID, the code we already
//     answer for a tag outside the grammar (see [errTagInvalid]).
//   - referrers artifactType= is a manifest's field: MANIFEST_INVALID,
//     the spec's code for a manifest field that cannot be.
var (
	errLastNameInvalid     = registry.ErrNameInvalid
	errLastTagInvalid      = registry.ErrManifestInvalid
	errArtifactTypeInvalid = registry.ErrManifestInvalid
)

// queryText returns the query parameter key, or invalid (400) when it is
// not printable text: invalid UTF-8 or a control character, NUL among
// them. No name, tag or media type holds one, and PostgreSQL refuses such
// text, which would otherwise surface as a 500.
func queryText(q url.Values, key string, invalid *registry.Error) (string, error) {
	v := q.Get(key)
	if !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", invalid.WithMessage("query parameter %s must be printable UTF-8 text", key)
	}
	return v, nil
}
