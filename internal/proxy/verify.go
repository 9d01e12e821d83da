// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package proxy

import (
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

// verifiedBody passes an upstream blob's body on while checking it
// against the digest asked for. It holds the last byte back until the
// body has ended and matched: a body that does not match never reaches
// the reader whole, and ends with an ErrUpstream error instead of EOF.
// The HTTP layer then leaves its response short of the Content-Length it
// announced and closes the connection, so the client sees a failed
// transfer rather than a wrong blob under our Docker-Content-Digest.
type verifiedBody struct {
	body     io.ReadCloser
	want     digest.Digest
	verifier digest.Verifier
	scratch  []byte
	// pending was read and checked so far, not given out yet; its last
	// byte is held until end is io.EOF.
	pending []byte
	// end is nil while the body is being read, io.EOF once it ended and
	// matched, otherwise why it is refused.
	end error
}

// verified wraps upstream's body of blob d.
func verified(body io.ReadCloser, d digest.Digest) io.ReadCloser {
	return &verifiedBody{body: body, want: d, verifier: d.Verifier(), scratch: make([]byte, 64<<10)}
}

func (v *verifiedBody) Read(p []byte) (int, error) {
	for {
		hold := 1
		if v.end == io.EOF {
			hold = 0
		}
		if len(v.pending) > hold {
			n := copy(p, v.pending[:len(v.pending)-hold])
			v.pending = v.pending[n:]
			return n, nil
		}
		if v.end != nil {
			return 0, v.end // a refused body keeps its last byte
		}
		v.fill()
	}
}

// fill reads the next piece of the body after the byte held back, and
// settles end when the body ends.
func (v *verifiedBody) fill() {
	k := copy(v.scratch, v.pending)
	n, err := v.body.Read(v.scratch[k:])
	v.verifier.Write(v.scratch[k : k+n])
	v.pending = v.scratch[:k+n]
	switch {
	case errors.Is(err, io.EOF) && v.verifier.Verified():
		v.end = io.EOF
	case errors.Is(err, io.EOF):
		v.end = fmt.Errorf("%w: blob %s: upstream sent bytes with another digest", ErrUpstream, v.want)
	case err != nil:
		v.end = fmt.Errorf("%w: reading blob %s: %v", ErrUpstream, v.want, err)
	}
}

// Close closes upstream's body.
func (v *verifiedBody) Close() error { return v.body.Close() }

// window gives bytes [offset, offset+length) of a verified body (length
// -1: to its end).
func window(body io.ReadCloser, offset, length int64) (io.ReadCloser, error) {
	if _, err := io.CopyN(io.Discard, body, offset); err != nil {
		body.Close()
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the blob ended before the range", ErrUpstream)
		}
		return nil, err
	}
	if length < 0 {
		return body, nil
	}
	return &windowReader{body: body, left: length}, nil
}

// windowReader gives the next left bytes of body, holding the last one
// back until the rest of body has been read: the whole blob must have
// matched its digest before the range is complete.
type windowReader struct {
	body io.ReadCloser
	left int64
}

func (w *windowReader) Read(p []byte) (int, error) {
	switch {
	case w.left == 0:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	case w.left > 1:
		if int64(len(p)) > w.left-1 {
			p = p[:w.left-1]
		}
		n, err := w.body.Read(p)
		w.left -= int64(n)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	var last [1]byte
	if _, err := io.ReadFull(w.body, last[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if _, err := io.Copy(io.Discard, w.body); err != nil {
		return 0, err
	}
	p[0], w.left = last[0], 0
	return 1, nil
}

// Close closes the body.
func (w *windowReader) Close() error { return w.body.Close() }
