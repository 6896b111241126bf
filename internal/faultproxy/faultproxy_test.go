package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait that should succeed; generous so a loaded
// 2-core CI machine cannot flake.
const patience = 10 * time.Second

// startEcho runs a tiny echo server on loopback for the test's lifetime.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoProxyGoroutines(t)
	})
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(patience))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// expectClosed asserts the peer closed c: a read fails with something
// other than a timeout.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err == nil {
			t.Fatalf("read %q from a connection that should be closed", buf[:n])
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open: read timed out")
		}
		return
	}
}

// expectHeld asserts nothing arrives on c within a short window.
func expectHeld(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read = %q, %v; want a timeout", buf[:n], err)
	}
}

// waitFor polls cond until it holds; polling, not a fixed sleep, so it is
// both fast and tolerant of slow machines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func assertNoProxyGoroutines(t *testing.T) {
	t.Helper()
	// A goroutine that has run its deferred wg.Done (so Close returned) may still be on its
	// way out: look again, for a bounded while, before calling it a leak.
	var left []string
	for wait := time.Duration(0); ; wait = max(2*wait, time.Millisecond) {
		left = proxyGoroutines()
		if len(left) == 0 || wait > 500*time.Millisecond {
			break
		}
		runtime.Gosched()
		time.Sleep(wait)
	}
	for _, g := range left {
		t.Errorf("proxy goroutine still running after Close:\n%s", g)
	}
}

// proxyGoroutines are the stacks of the goroutines running the proxy's code.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	var out []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "faultproxy.(*Proxy)") || strings.Contains(g, "faultproxy.(*pair)") {
			out = append(out, g)
		}
	}
	return out
}

func TestForwarding(t *testing.T) {
	p := startProxy(t, startEcho(t))

	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, many chunks
	const conns = 4
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		c := dial(t, p.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(patience))
			go func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c) // EOF proves half-close propagates
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, payload) {
				errs <- fmt.Errorf("echo mismatch: got %d bytes", len(got))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := int64(conns * len(payload))
	waitFor(t, "stats to settle", func() bool {
		s := p.Stats()
		return s.Open == 0 && s.BytesToTarget == total && s.BytesFromTarget == total
	})
	if s := p.Stats(); s.Accepted != conns || s.Refused != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestCutAndRestore(t *testing.T) {
	p := startProxy(t, startEcho(t))
	c := dial(t, p.Addr())
	roundTrip(t, c, "before")

	p.Cut()
	expectClosed(t, c)
	if s := p.Stats(); s.Open != 0 {
		t.Fatalf("Open = %d after Cut", s.Open)
	}

	refused := dial(t, p.Addr()) // accepted by the kernel, then closed
	expectClosed(t, refused)
	if s := p.Stats(); s.Refused != 1 {
		t.Fatalf("Refused = %d, want 1", s.Refused)
	}

	p.Restore()
	roundTrip(t, dial(t, p.Addr()), "after")
}

func TestBlackholeHoldsThenRestoreCloses(t *testing.T) {
	p := startProxy(t, startEcho(t))
	old := dial(t, p.Addr())
	roundTrip(t, old, "ok")
	before := p.Stats()

	p.Blackhole()
	io.WriteString(old, "held")
	expectHeld(t, old)

	fresh := dial(t, p.Addr())
	io.WriteString(fresh, "held too")
	expectHeld(t, fresh)
	// Make sure the new connection is proxied (held), not still dialing,
	// before Restore, or it could come up in normal mode.
	waitFor(t, "both connections open", func() bool { return p.Stats().Open == 2 })

	s := p.Stats()
	if s.BytesToTarget != before.BytesToTarget || s.BytesFromTarget != before.BytesFromTarget {
		t.Fatalf("bytes forwarded during blackhole: before %+v, after %+v", before, s)
	}

	p.Restore()
	expectClosed(t, old)
	expectClosed(t, fresh)
	roundTrip(t, dial(t, p.Addr()), "back")
}

func TestDelay(t *testing.T) {
	p := startProxy(t, startEcho(t))
	c := dial(t, p.Addr())
	roundTrip(t, c, "warm")

	const d = 50 * time.Millisecond
	p.Delay(d)

	start := time.Now()
	roundTrip(t, c, "x")
	// Delayed once each way; only a lower bound is asserted, so a slow
	// machine can make this slower but never fail it.
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %v, want >= %v", rtt, 2*d)
	}

	// Many small writes must come back in order.
	var want strings.Builder
	c.SetDeadline(time.Now().Add(patience))
	go func() {
		for i := range 200 {
			fmt.Fprintf(c, "%d,", i)
		}
	}()
	for i := range 200 {
		fmt.Fprintf(&want, "%d,", i)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatalf("reordered:\n got %s\nwant %s", got, want.String())
	}
	c.SetDeadline(time.Time{})

	p.Delay(0)
	roundTrip(t, c, "undelayed")
}

func TestRejectsNonLoopbackTarget(t *testing.T) {
	for _, target := range []string{
		"10.0.0.1:6379", "192.168.1.10:6379", "0.0.0.0:6379", "[::]:6379",
		"example.com:6379", "redis:6379", "127.0.0.1", "",
	} {
		if p, err := Start(target); err == nil {
			p.Close()
			t.Errorf("Start(%q) succeeded, want error", target)
		}
	}
	for _, target := range []string{"127.0.0.1:6379", "127.0.0.2:6379", "[::1]:6379", "localhost:6379", "LocalHost:6379"} {
		p, err := Start(target)
		if err != nil {
			t.Errorf("Start(%q): %v", target, err)
			continue
		}
		if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
			t.Errorf("listening on %s, want 127.0.0.1", p.Addr())
		}
		p.Close()
	}
}

func TestCloseStopsEverything(t *testing.T) {
	echo := startEcho(t)
	p, err := Start(echo)
	if err != nil {
		t.Fatal(err)
	}
	// Leave goroutines in every kind of wait: idle, delayed and held.
	idle := dial(t, p.Addr())
	roundTrip(t, idle, "idle")
	p.Delay(time.Hour)
	delayed := dial(t, p.Addr())
	io.WriteString(delayed, "never")
	waitFor(t, "two connections", func() bool { return p.Stats().Open == 2 })
	p.Blackhole()
	held := dial(t, p.Addr())
	io.WriteString(held, "held")
	waitFor(t, "three connections", func() bool { return p.Stats().Open == 3 })

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoProxyGoroutines(t) // Close waits for them, so no polling needed
	for _, c := range []net.Conn{idle, delayed, held} {
		expectClosed(t, c)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
