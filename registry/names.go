// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package registry

import (
	_ "crypto/sha256" // go-digest reports an algorithm without a linked hash as unavailable.
	_ "crypto/sha512"
	"regexp"

	"github.com/opencontainers/go-digest"
)

// The spec's grammar for repository names and tags. A name is one or more
// path components separated by "/"; its pattern rules out "..", empty
// components and any percent-encoding, so path traversal cannot be spelled.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// MaxNameLength bounds a repository name. The spec lets registries limit it;
// 255 keeps the name plus the bucket layout's suffixes well inside S3's
// 1024-byte key limit.
const MaxNameLength = 255

// ValidateName checks a repository name against the spec; the error is
// [ErrNameInvalid] with the reason.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return ErrNameInvalid.WithMessage("repository name must be 1 to %d characters", MaxNameLength)
	}
	if !nameRE.MatchString(name) {
		return ErrNameInvalid.WithMessage("invalid repository name %q", name)
	}
	return nil
}

// ValidTag reports whether tag matches the spec's tag grammar.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

// ParseDigest parses a digest in one of the algorithms the registry serves
// (sha256, sha512), checking its encoded length and alphabet; anything else
// is [ErrDigestInvalid].
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", ErrDigestInvalid.WithMessage("invalid digest %q: %v", s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", ErrDigestInvalid.WithMessage("unsupported digest algorithm %q", d.Algorithm())
}
