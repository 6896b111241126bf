// Package faultproxy is a loopback TCP proxy that tests put between app
// instances and a Redis server to simulate store faults: Redis killed
// (Cut), unreachable with packets silently dropped (Blackhole), or slow
// (Delay). Faults switch at run time and apply to open connections as well
// as new ones, so tests can break a live pool, not only fresh dials.
//
// It only listens on and forwards to loopback addresses: it is test
// equipment, and refusing other targets keeps it from ever relaying real
// traffic.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are counters for assertions in tests.
type Stats struct {
	Accepted        int64 // TCP connections accepted, including refused ones
	Refused         int64 // accepted connections closed at once (Cut, or dial failure)
	Open            int64 // proxied connections currently open
	BytesToTarget   int64 // bytes delivered from clients to the target
	BytesFromTarget int64 // bytes delivered from the target to clients
}

// Option configures a Proxy.
type Option func(*config)

type config struct {
	dialTimeout time.Duration
}

// WithDialTimeout bounds how long the proxy waits to connect to the target
// for each accepted connection (default 5s), so a dead target fails the
// client quickly instead of hanging the test.
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) { c.dialTimeout = d }
}

type mode int

const (
	modeNormal mode = iota
	modeCut
	modeBlackhole
)

// Proxy forwards connections from Addr to the target, applying the current
// fault. All methods are safe for concurrent use.
type Proxy struct {
	target string
	cfg    config
	ln     net.Listener
	ctx    context.Context // cancelled by Close to abort dials
	cancel context.CancelFunc

	mu      sync.Mutex
	mode    mode
	delay   time.Duration
	changed chan struct{} // closed and replaced on every fault change, waking held writers
	conns   map[*pair]struct{}
	closed  bool

	wg sync.WaitGroup // every goroutine the proxy starts; Close waits on it

	accepted, refused, toTarget, fromTarget atomic.Int64
}

// Start listens on 127.0.0.1 at a random port and forwards every accepted
// connection to target, which must be a loopback host:port.
func Start(target string, opts ...Option) (*Proxy, error) {
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	cfg := config{dialTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		cfg:     cfg,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		conns:   make(map[*pair]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

func checkLoopback(target string) error {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return fmt.Errorf("faultproxy: bad target %q: %w", target, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("faultproxy: target %q is not a loopback address", target)
}

// Addr is the host:port clients should dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut simulates the target dying: every open connection is closed on both
// sides, and new connections are accepted then closed at once, until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(modeCut)
	p.closeAllLocked()
}

// Blackhole simulates a network partition: connections, open and new, stay
// up but no bytes are delivered either way (they are read and held), so
// clients see timeouts rather than errors. Restore closes every connection
// that was held, since a real blackhole loses in-flight packets and clients
// must reconnect.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setModeLocked(modeBlackhole)
}

// Delay makes every chunk forwarded in either direction arrive d after the
// proxy read it, preserving order per direction. Delay(0) removes it; it
// combines with Cut and Blackhole and is also cleared by Restore.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = max(d, 0)
	p.wakeLocked()
}

// Restore clears every fault (including Delay) and resumes normal
// forwarding. Connections held by Blackhole are closed, not resumed.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == modeBlackhole {
		p.closeAllLocked()
	}
	p.delay = 0
	p.setModeLocked(modeNormal)
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{
		Accepted:        p.accepted.Load(),
		Refused:         p.refused.Load(),
		Open:            open,
		BytesToTarget:   p.toTarget.Load(),
		BytesFromTarget: p.fromTarget.Load(),
	}
}

// Close stops the listener, closes every connection and returns once all
// of the proxy's goroutines have exited. Calling it again is a no-op.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.closeAllLocked()
	p.wakeLocked()
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) setModeLocked(m mode) {
	p.mode = m
	p.wakeLocked()
}

func (p *Proxy) wakeLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) closeAllLocked() {
	for c := range p.conns {
		delete(p.conns, c)
		c.shutdown()
	}
}

// state is what a writer needs to decide whether to deliver a chunk.
func (p *Proxy) state() (mode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.changed
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. out of file descriptors): back off briefly
			// rather than spin, and stop if Close happens meanwhile.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	if !p.admitting() {
		p.refuse(client)
		return
	}
	d := net.Dialer{Timeout: p.cfg.dialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.refuse(client)
		return
	}

	c := &pair{p: p, client: client, server: server, done: make(chan struct{})}
	c.remaining.Store(2)
	p.mu.Lock()
	// Re-check: Cut or Close may have happened while dialing.
	if p.closed || p.mode == modeCut {
		p.mu.Unlock()
		server.Close()
		p.refuse(client)
		return
	}
	p.conns[c] = struct{}{}
	up := make(chan chunk, queueLen)
	down := make(chan chunk, queueLen)
	p.wg.Add(4)
	p.mu.Unlock()

	go c.read(client, up)
	go c.write(server, up, &p.toTarget)
	go c.read(server, down)
	go c.write(client, down, &p.fromTarget)
}

func (p *Proxy) admitting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed && p.mode != modeCut
}

func (p *Proxy) refuse(c net.Conn) {
	p.refused.Add(1)
	c.Close()
}

func (p *Proxy) drop(c *pair) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.shutdown()
}

// queueLen bounds the chunks held per direction; beyond it the reader
// blocks and TCP flow control holds the rest, so a long Blackhole or Delay
// cannot grow memory without limit.
const queueLen = 256

type chunk struct {
	data   []byte
	readAt time.Time
}

// pair is one proxied connection. Each direction has a reader that queues
// chunks and a writer that delivers them when the fault state allows, so
// delays never reorder bytes and a held direction never blocks reads.
type pair struct {
	p              *Proxy
	client, server net.Conn
	done           chan struct{} // closed by shutdown
	once           sync.Once
	remaining      atomic.Int32 // directions not yet finished cleanly
}

func (c *pair) shutdown() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
	})
}

func (c *pair) read(src net.Conn, q chan<- chunk) {
	defer c.p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			ch := chunk{data: append([]byte(nil), buf[:n]...), readAt: time.Now()}
			select {
			case q <- ch:
			case <-c.done:
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				close(q) // let the writer flush, then half-close
			} else {
				c.p.drop(c)
			}
			return
		}
	}
}

func (c *pair) write(dst net.Conn, q <-chan chunk, counter *atomic.Int64) {
	defer c.p.wg.Done()
	for {
		var ch chunk
		var ok bool
		select {
		case ch, ok = <-q:
		case <-c.done:
			return
		}
		if !ok {
			if tc, isTCP := dst.(*net.TCPConn); isTCP {
				tc.CloseWrite()
			}
			if c.remaining.Add(-1) == 0 {
				c.p.drop(c)
			}
			return
		}
		if !c.waitDeliverable(ch.readAt) {
			return
		}
		n, err := dst.Write(ch.data)
		counter.Add(int64(n))
		if err != nil {
			c.p.drop(c)
			return
		}
	}
}

// waitDeliverable blocks until the fault state lets a chunk read at readAt
// through, re-evaluating on every fault change so Restore and Delay(0)
// take effect on queued data at once. It reports false if the connection
// was closed meanwhile.
func (c *pair) waitDeliverable(readAt time.Time) bool {
	for {
		m, delay, changed := c.p.state()
		if m != modeNormal {
			select {
			case <-changed:
				continue
			case <-c.done:
				return false
			}
		}
		wait := time.Until(readAt.Add(delay))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			// Loop to re-check: a fault may have started meanwhile.
		case <-changed:
			t.Stop()
		case <-c.done:
			t.Stop()
			return false
		}
	}
}
