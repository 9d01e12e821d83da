// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package store

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/binary"
	"errors"
	"hash"

	"github.com/opencontainers/go-digest"
)

// uploadHash hashes an upload in both algorithms the registry accepts: the
// client names the digest only when it finishes, and finishing must not
// re-read the blob. Its state is persisted between requests.
type uploadHash struct {
	sha256 hash.Hash
	sha512 hash.Hash
}

func newUploadHash() *uploadHash {
	return &uploadHash{sha256: sha256.New(), sha512: sha512.New()}
}

func (h *uploadHash) Write(p []byte) (int, error) {
	if h.sha256 != nil {
		h.sha256.Write(p)
	}
	if h.sha512 != nil {
		h.sha512.Write(p)
	}
	return len(p), nil
}

// keepOnly stops hashing in the algorithms other than alg, once the
// client has named the digest: sha512 costs more than twice sha256, and a
// blob pushed as sha256 need never pay it. A hash that has dropped one
// cannot be marshaled; only requests that finish the upload use it.
func (h *uploadHash) keepOnly(alg digest.Algorithm) {
	if alg == digest.SHA512 {
		h.sha256 = nil
	} else {
		h.sha512 = nil
	}
}

// digest returns the digest of what was written in d's algorithm.
func (h *uploadHash) digest(alg digest.Algorithm) digest.Digest {
	if alg == digest.SHA512 {
		return digest.NewDigest(alg, h.sha512)
	}
	return digest.NewDigest(digest.SHA256, h.sha256)
}

// marshal encodes both states: a 4-byte length of the sha256 state, the
// sha256 state, then the sha512 state.
func (h *uploadHash) marshal() ([]byte, error) {
	a, err := h.sha256.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	b, err := h.sha512.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(len(a)))
	out = append(out, a...)
	return append(out, b...), nil
}

func unmarshalUploadHash(state []byte) (*uploadHash, error) {
	h := newUploadHash()
	if len(state) < 4 {
		return nil, errors.New("upload hash state is truncated")
	}
	n := binary.BigEndian.Uint32(state)
	if uint64(len(state)-4) < uint64(n) {
		return nil, errors.New("upload hash state is truncated")
	}
	if err := h.sha256.(encoding.BinaryUnmarshaler).UnmarshalBinary(state[4 : 4+n]); err != nil {
		return nil, err
	}
	if err := h.sha512.(encoding.BinaryUnmarshaler).UnmarshalBinary(state[4+n:]); err != nil {
		return nil, err
	}
	return h, nil
}
