// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// A stalled S3 accepts connections and then answers nothing, or stops
// taking or sending bytes mid-body. Without deadlines a request then
// hangs for as long as the kernel keeps the connection, holding whatever
// the caller holds: a database transaction, row locks, an upload session.
// A watchdog per operation turns a stall into an [ErrUnavailable] within
// seconds, while never cutting a large transfer that keeps moving:
//
//   - waiting for an answer (retries included) may take at most
//     [Config.ResponseTimeout], or [Config.SlowResponseTimeout] for the
//     operations S3 itself may work on for minutes before answering
//     (completing a multipart upload, copying);
//   - sending a body: [sendWatch] fails the request when the SDK has not
//     asked for more of it within [Config.IdleTimeout], because the
//     connection stopped taking bytes; after the last byte the answer's
//     bound applies;
//   - receiving a body: [recvWatch] fails a read that waits on S3 longer
//     than [Config.IdleTimeout]. Time the caller spends between reads (a
//     slow client downloading) is not counted.

// errStalled is the cause of a request a watchdog cut.
var errStalled = errors.New("s3store: S3 stopped answering")

// watchdog cancels an operation's context when its timer fires.
type watchdog struct {
	cfg    *Config
	cancel context.CancelCauseFunc
	timer  *time.Timer
	fired  atomic.Bool
	// answer is the bound on waiting for S3's answer.
	answer time.Duration
}

// watch returns ctx made cancellable by a watchdog already waiting for
// an answer within answer; the caller must call release when the
// operation is over (or hand that to a [recvWatch]).
func (s *Store) watch(ctx context.Context, answer time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{cfg: &s.cfg, cancel: cancel, answer: answer}
	w.timer = time.AfterFunc(answer, func() {
		w.fired.Store(true)
		cancel(errStalled)
	})
	return ctx, w
}

func (w *watchdog) arm(d time.Duration) { w.timer.Reset(d) }
func (w *watchdog) disarm()             { w.timer.Stop() }

// release stops the watchdog and frees the context.
func (w *watchdog) release() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// err is [wrap] for an operation the watchdog guarded: a cut one is an
// outage.
func (w *watchdog) err(op, key string, err error) error {
	if cut := w.cut(op, key, err); cut != nil {
		return cut
	}
	return wrap(op, key, err)
}

// cut returns the outage for an operation the watchdog cut, else nil.
func (w *watchdog) cut(op, key string, err error) error {
	if err == nil || !w.fired.Load() {
		return nil
	}
	return fmt.Errorf("%w: %s %q: no answer or no progress in time: %w", ErrUnavailable, op, key, errStalled)
}

// sendWatch is a request body that arms its watchdog whenever the SDK
// holds bytes it has not yet written: from the return of one Read to the
// next call. After the last byte the response header timeout takes over.
type sendWatch struct {
	r io.Reader
	w *watchdog
}

// Read implements io.Reader.
func (s *sendWatch) Read(p []byte) (int, error) {
	s.w.disarm()
	n, err := s.r.Read(p)
	if err == nil {
		s.w.arm(s.w.cfg.IdleTimeout)
	} else {
		s.w.arm(s.w.answer)
	}
	return n, err
}

// seekableSendWatch keeps a seekable body seekable, so the SDK can still
// rewind it to retry a failed attempt.
type seekableSendWatch struct {
	sendWatch
	s io.Seeker
}

// Seek implements io.Seeker.
func (s *seekableSendWatch) Seek(offset int64, whence int) (int64, error) {
	return s.s.Seek(offset, whence)
}

// watchSend wraps body for a request guarded by w.
func watchSend(body io.Reader, w *watchdog) io.Reader {
	sw := sendWatch{r: body, w: w}
	if s, ok := body.(io.Seeker); ok {
		return &seekableSendWatch{sendWatch: sw, s: s}
	}
	return &sw
}

// recvWatch is a response body whose reads may wait on S3 at most the
// watchdog's idle time each.
type recvWatch struct {
	body    io.ReadCloser
	w       *watchdog
	op, key string
}

// Read implements io.Reader.
func (r *recvWatch) Read(p []byte) (int, error) {
	r.w.arm(r.w.cfg.IdleTimeout)
	n, err := r.body.Read(p)
	r.w.disarm()
	if err != nil && err != io.EOF && r.w.fired.Load() {
		return n, r.w.err(r.op, r.key, err)
	}
	return n, err
}

// Close implements io.Closer; it also frees the request's context.
func (r *recvWatch) Close() error {
	err := r.body.Close()
	r.w.release()
	return err
}
