// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package regbench

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/opencontainers/go-digest"
)

// tailSize is the unique end of every generated blob.
const tailSize = 24

// blobSource makes distinct blobs of one size cheaply: they share all but
// their last tailSize bytes, so the sha256 state after the shared part is
// computed once and a blob's digest costs one block.
type blobSource struct {
	common []byte
	state  []byte // marshaled sha256 state after common
	nonce  uint64 // tells this process's blobs from earlier runs'
}

func newBlobSource(size int64, nonce uint64) (*blobSource, error) {
	if size < tailSize {
		return nil, fmt.Errorf("blob size %d is below %d bytes", size, tailSize)
	}
	common := make([]byte, size-tailSize)
	rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16), byte(size >> 24)})
	rng.Read(common)
	h := sha256.New()
	h.Write(common)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &blobSource{common: common, state: state, nonce: nonce}, nil
}

// blob is one generated blob: the shared bytes and its own tail.
type blob struct {
	common []byte
	tail   [tailSize]byte
	digest digest.Digest
}

// blob returns the blob numbered id (unique within the source).
func (s *blobSource) blob(id uint64) *blob {
	b := &blob{common: s.common}
	binary.BigEndian.PutUint64(b.tail[0:], s.nonce)
	binary.BigEndian.PutUint64(b.tail[8:], id)
	copy(b.tail[16:], "regbench")
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.state); err != nil {
		panic(err) // the state came from the same implementation
	}
	h.Write(b.tail[:])
	b.digest = digest.NewDigest(digest.SHA256, h)
	return b
}

// Size is the blob's length.
func (b *blob) Size() int64 { return int64(len(b.common) + tailSize) }

// ReadAt reads the blob as one run of bytes.
func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(b.common)) {
		n = copy(p, b.common[off:])
	}
	if n < len(p) {
		toff := max(off+int64(n)-int64(len(b.common)), 0)
		if toff < tailSize {
			n += copy(p[n:], b.tail[toff:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// section is a reader of length bytes of b from off.
func (b *blob) section(off, length int64) *io.SectionReader {
	return io.NewSectionReader(b, off, length)
}

// bytesOf returns length bytes of b from off in memory, as S3 parts want
// them: a slice of the shared bytes when the range lies within them, else
// a copy.
func (b *blob) bytesOf(off, length int64) []byte {
	if off+length <= int64(len(b.common)) {
		return b.common[off : off+length]
	}
	p := make([]byte, length)
	b.ReadAt(p, off)
	return p
}
