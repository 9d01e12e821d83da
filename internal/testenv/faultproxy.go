// SPDX-FileCopyrightText: 2026 The ha-registry authors
// SPDX-License-Identifier: EUPL-1.2

package testenv

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on loopback that a test puts between the
// registry and one of its dependencies, to cut the dependency off and bring
// it back while the registry keeps running. It behaves like toxiproxy's
// disable: a cut closes every open connection and refuses new ones. It
// can also stall: keep every connection open and move no byte, as a hung
// server does.
type FaultProxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	cut     bool
	stalled bool
	latency time.Duration // added to every answer from the target
	flowing *sync.Cond    // signalled when a stall ends
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewFaultProxy forwards a fresh loopback port to target (host:port) until
// t ends.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault proxy: %v", err)
	}
	p := &FaultProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.flowing = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port, to give the registry in place of target.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones (they
// are accepted and reset at once, as a dead server's port would answer).
func (p *FaultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		reset(c)
		delete(p.conns, c)
	}
}

// Stall keeps every connection, open and new, open but moves no byte
// in either direction until Restore: the server accepts and never
// answers.
func (p *FaultProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Restore lets connections through again, ending a cut or a stall.
func (p *FaultProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.stalled = false
	p.flowing.Broadcast()
	p.mu.Unlock()
}

// SetLatency delays the start of every answer from the target by d, so
// that each request and response exchange costs d more, as a dependency
// d away would (0: none).
func (p *FaultProxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

func (p *FaultProxy) currentLatency() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency
}

// waitFlowing blocks while the proxy is stalled.
func (p *FaultProxy) waitFlowing() {
	p.mu.Lock()
	for p.stalled {
		p.flowing.Wait()
	}
	p.mu.Unlock()
}

// copy moves bytes from src to dst, holding them while stalled. asked is
// set while a request went out on the connection and its answer has not
// begun: copying an answer (answer true), the first piece after a request
// waits the latency, the rest of the answer does not.
func (p *FaultProxy) copy(dst, src net.Conn, answer bool, asked *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !answer {
				asked.Store(true)
			} else if d := p.currentLatency(); d > 0 && asked.Swap(false) {
				time.Sleep(d)
			}
			p.waitFlowing()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		reset(client)
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(server) {
		if server != nil {
			reset(server)
		}
		p.untrack(client)
		reset(client)
		return
	}
	done := make(chan struct{}, 2)
	var asked atomic.Bool
	pipe := func(dst, src net.Conn) {
		p.copy(dst, src, src == server, &asked)
		// One direction ended: end both, as a proxy that lost a side does.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	p.untrack(client)
	p.untrack(server)
}

// track registers c, or reports false while the proxy is cut.
func (p *FaultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *FaultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *FaultProxy) close() {
	p.ln.Close()
	p.Cut()
	p.Restore() // wakes the stalled copies, whose connections Cut closed
	p.wg.Wait()
}

// reset closes c with a TCP RST rather than a FIN, so the peer sees the
// connection fail instead of a clean end of stream.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
