package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/internal/faultproxy"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/token"
)

// The fault run: three app instances and a crowd on one throwaway Redis behind a fault proxy.
const (
	faultInstances = 3
	faultVisitors  = 40
	faultStayers   = 6  // visitors who, once admitted, keep their session to the end
	faultCapacity  = 20 // TotalActiveUsers: half the crowd waits at any time
	faultTimeout   = 300 * time.Millisecond
	// faultMargin is what an Enter may take beyond its store deadlines: the client's read
	// deadline firing, signing a token, and the scheduler of a loaded two-core machine running
	// -race with ~50 busy goroutines.
	faultMargin = 150 * time.Millisecond
	// faultResume is how soon after the store comes back a visitor must be newly admitted
	// (after a restart, once the recovery pause is over).
	faultResume = 2 * time.Second
	// faultRenewRetry is the library's renewRetry (renewals.go), the longest a failed
	// renewal stands (RenewInterval here, which is shorter): the run goes on this long after
	// the restart, so that every pass whose renewal failed while Redis was down has been
	// counted again (it once was only after the recovery pause, over the capacity).
	faultRenewRetry = 5 * time.Second
	// faultDown is how long the killed server stays down before the new one starts.
	faultDown = 2 * time.Second
)

// faultPhases name the stretches of the run; a request belongs to the one it started in.
var faultPhases = [...]string{"warm-up", "blackhole", "after blackhole", "delay", "after delay", "after restart"}

const (
	phWarmUp = iota
	phBlackhole
	phAfterBlackhole
	phDelay
	phAfterDelay
	phRestart
)

// TestFaultRun runs a crowd of 40 visitors through three instances of one room on a
// throwaway redis-server of its own, behind a loopback proxy that breaks the connection to it:
// blackholed for 10 s, then slowed to 800 ms a round trip for 5 s, then the server killed and
// restarted empty, with normal stretches in between. Six visitors stay admitted throughout,
// the others leave 1-4 s after admission (Release) and come back; the stayers and half the
// others always reach the same instance, the rest a random one. It checks what a visitor
// sees:
//
//  1. no Enter (or Release) waits past the store deadline: one deadline per store call it
//     may make, plus faultMargin;
//  2. no admitted visitor whose pass is still valid is turned away, during or after any
//     fault, the restart included (the store counts passes of a lost epoch again);
//  3. after the blackhole and the delay, a visitor is newly admitted within faultResume of
//     the store coming back; after the restart, within the recovery pause plus faultResume;
//  4. the store never holds more than TotalActiveUsers sessions (Room.Stats, sampled
//     throughout; only the normal stretches answer).
//
// It runs on the wall clock, unlike the rest of the suite: faults are about real timeouts
// and reconnections. It runs where WAITINGROOM_REDIS_ADDR is set (a setup with Redis) or
// with WAITINGROOM_FAULT=1, never under -short, and never touches that Redis: it starts its
// own server on a free port.
func TestFaultRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault run takes about 35 s of wall time")
	}
	if os.Getenv("WAITINGROOM_REDIS_ADDR") == "" && os.Getenv("WAITINGROOM_FAULT") != "1" {
		t.Skip("set WAITINGROOM_REDIS_ADDR (a setup with Redis) or WAITINGROOM_FAULT=1 to run the fault run; it starts its own redis-server")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("the fault run starts a throwaway redis-server of its own, and there is none in PATH")
	}
	srv := startThrowawayRedis(t, bin)
	proxy, err := faultproxy.Start(srv.addr, faultproxy.WithDialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	// The smallest recovery pause Config allows in practice: RefreshInterval's minimum (1 s)
	// plus a RenewInterval of 1 s (any positive value is accepted, but the crowd's admitted
	// visitors come back every 0.2-0.5 s, so a shorter one only adds renewals). Sessions of
	// 30 s outlast the 10 s blackhole, so that passes stay valid through it; the crowd ends
	// its sessions itself, after 1-4 s. The rate is far above what 20 slots turn over, so
	// that capacity alone paces admissions and they go on steadily.
	cfg := waitingroom.Config{
		TotalActiveUsers:       faultCapacity,
		NewUsersPerMinute:      1200,
		AllowRateAboveCapacity: true,
		SessionDuration:        30 * time.Second,
		RenewInterval:          time.Second,
		RefreshInterval:        time.Second,
	}
	prefix := "wrfault-" + randomHex(6)
	rooms := make([]*waitingroom.Room, faultInstances)
	for i := range rooms {
		// Each instance has its own client and pool, as separate processes would.
		c := goredis.NewClient(&goredis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { c.Close() })
		st, err := redis.New(c, redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if rooms[i], err = waitingroom.New("fault", st, cfg, waitingroom.WithKeys(testKey),
			waitingroom.WithStoreTimeout(faultTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	full := rooms[0].Config()
	recovery := full.RenewInterval + full.RefreshInterval // admission.Limits.Recovery

	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		lastNew  atomic.Int64 // UnixNano of the latest new admission seen
		tl       faultTimeline
		visitors = make([]*faultVisitor, faultVisitors)
		samples  []faultSample // read once the sampler has stopped
	)
	tl.start = time.Now()
	for i := range visitors {
		v := &faultVisitor{id: i, stayer: i < faultStayers, home: -1,
			rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))}
		if v.stayer || i%2 == 0 {
			v.home = i % faultInstances // sticky: it stays on one instance
		}
		visitors[i] = v
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !v.stayer {
				// The stayers take the first places, so that they are in before the first fault.
				if !pause(stop, 200*time.Millisecond+time.Duration(i)*20*time.Millisecond) {
					return
				}
			}
			v.run(stop, rooms, &lastNew)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pause(stop, 25*time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := rooms[0].Stats(ctx)
			cancel()
			if err == nil {
				samples = append(samples, faultSample{at: time.Now(), active: st.Active, waiting: st.Waiting})
			}
		}
	}()
	finish := func() {
		close(stop)
		wg.Wait()
		tl.end = time.Now()
	}
	stopped := false
	defer func() {
		if !stopped {
			finish()
		}
	}()

	time.Sleep(3 * time.Second)
	tl.blackhole = time.Now()
	proxy.Blackhole()
	time.Sleep(10 * time.Second)
	proxy.Restore()
	tl.blackholeEnd = time.Now()
	time.Sleep(3 * time.Second)
	tl.delay = time.Now()
	// Delay holds each chunk that long in each direction: 800 ms a round trip, well past the
	// store deadline, so every call that needs Redis fails (some still run in Redis later).
	proxy.Delay(400 * time.Millisecond)
	time.Sleep(5 * time.Second)
	proxy.Restore()
	tl.delayEnd = time.Now()
	time.Sleep(3 * time.Second)
	tl.kill = time.Now()
	// SIGKILL, then a new empty server on the same port after two seconds down, about what a
	// supervisor takes to restart one; the proxy stays.
	tl.ready = srv.restart(t, faultDown)
	// Until admissions resume (bounded), and long enough that passes whose renewal failed
	// while Redis was down are renewed again, so that a capacity overrun would show.
	deadline := tl.ready.Add(recovery + faultResume + 3*time.Second)
	for time.Now().Before(deadline) && lastNew.Load() < tl.ready.UnixNano() {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(max(time.Second, time.Until(tl.ready.Add(faultRenewRetry+2*time.Second))))
	finish()
	stopped = true

	var recs []faultRecord
	var releases []faultRelease
	for _, v := range visitors {
		recs = append(recs, v.records...)
		releases = append(releases, v.releases...)
	}
	slices.SortFunc(recs, func(a, b faultRecord) int { return a.start.Compare(b.start) })
	t.Logf("%d requests, %d releases, %d stats samples in %v; store deadline %v, recovery pause %v",
		len(recs), len(releases), len(samples), tl.end.Sub(tl.start).Round(time.Millisecond), faultTimeout, recovery)
	faultReport(t, &tl, recs, releases)

	// 1. Every Enter ends within its store calls' deadlines. A join or a poll is one store
	// call; a request with a pass is at most two: a renewal and, when the store says the
	// session is over, a join (Room.renew). A store call is one deadline however many round
	// trips it takes (FCALL, FUNCTION LOAD and FCALL again after the restart; the client's
	// retries): all run under one context. Release and its Revoke share one deadline too.
	var slow []string
	for _, r := range recs {
		limit := faultTimeout + faultMargin
		if r.sent == sentPass {
			limit = 2*faultTimeout + faultMargin
		}
		if r.took > limit {
			slow = append(slow, fmt.Sprintf("visitor %d, %s, sent %s: took %v (limit %v): outcome %v, err %v",
				r.visitor, tl.at(r.start), r.sent, r.took.Round(time.Millisecond), limit, r.outcome, r.err))
		}
	}
	for _, r := range releases {
		if limit := faultTimeout + faultMargin; r.took > limit {
			slow = append(slow, fmt.Sprintf("visitor %d, %s: Release took %v (limit %v): err %v",
				r.visitor, tl.at(r.start), r.took.Round(time.Millisecond), limit, r.err))
		}
	}
	if len(slow) > 0 {
		t.Errorf("%d requests waited past the store deadline:\n%s", len(slow), strings.Join(first(slow, 15), "\n"))
	}

	// Errors are the store's: nothing else may fail a request here.
	var odd []string
	for _, r := range recs {
		if r.err != nil && !errors.Is(r.err, waitingroom.ErrStore) {
			odd = append(odd, fmt.Sprintf("visitor %d, %s: %v", r.visitor, tl.at(r.start), r.err))
		}
	}
	if len(odd) > 0 {
		t.Errorf("%d errors do not wrap ErrStore:\n%s", len(odd), strings.Join(first(odd, 10), "\n"))
	}

	// 2. A valid pass is never turned away.
	var refused []string
	for _, r := range recs {
		if r.validPass && r.outcome != waitingroom.Admitted {
			refused = append(refused, fmt.Sprintf("visitor %d, %s: pass (epoch %d, session %d, expires in %v) got outcome %v, err %v",
				r.visitor, tl.at(r.start), r.pass.Epoch, r.pass.Session, r.pass.Expires.Sub(r.start).Round(time.Millisecond), r.outcome, r.err))
		}
	}
	if len(refused) > 0 {
		t.Errorf("%d requests with a valid pass were turned away:\n%s", len(refused), strings.Join(first(refused, 15), "\n"))
	}

	// 3. Admissions resume.
	for _, c := range []struct {
		name  string
		back  time.Time
		limit time.Duration
		why   string
	}{
		{"the blackhole", tl.blackholeEnd, faultResume, ""},
		{"the delay", tl.delayEnd, faultResume, ""},
		{"the restart", tl.ready, recovery + faultResume, fmt.Sprintf(" (the recovery pause %v plus %v)", recovery, faultResume)},
	} {
		at, ok := firstNewAdmission(recs, c.back)
		switch {
		case !ok:
			t.Errorf("after %s: nobody was newly admitted by the end of the run (%v later); want within %v%s",
				c.name, tl.end.Sub(c.back).Round(time.Millisecond), c.limit, c.why)
		case at.Sub(c.back) > c.limit:
			t.Errorf("after %s: the first new admission came %v after the store came back; want within %v%s",
				c.name, at.Sub(c.back).Round(time.Millisecond), c.limit, c.why)
		}
	}

	// 4. Capacity, as the store sees it.
	var over []string
	maxActive := int64(0)
	for _, s := range samples {
		maxActive = max(maxActive, s.active)
		if s.active > faultCapacity {
			over = append(over, fmt.Sprintf("%s: %d active, %d waiting", tl.at(s.at), s.active, s.waiting))
		}
	}
	late := lateRecounts(&tl, recs, recovery)
	if len(over) == 0 {
		t.Logf("stats: at most %d active of %d%s", maxActive, faultCapacity, late)
	} else {
		t.Errorf("the store held more than %d sessions (at most %d) in %d of %d samples:\n%s%s",
			faultCapacity, maxActive, len(over), len(samples), strings.Join(first(over, 15), "\n"), late)
	}
}

// faultTimeline is when each fault began and ended.
type faultTimeline struct {
	start, blackhole, blackholeEnd, delay, delayEnd, kill, ready, end time.Time
}

func (tl *faultTimeline) phase(at time.Time) int {
	switch {
	case at.Before(tl.blackhole):
		return phWarmUp
	case at.Before(tl.blackholeEnd):
		return phBlackhole
	case at.Before(tl.delay):
		return phAfterBlackhole
	case at.Before(tl.delayEnd):
		return phDelay
	case at.Before(tl.kill):
		return phAfterDelay
	}
	return phRestart
}

// at says when at was: its phase and how long into it.
func (tl *faultTimeline) at(at time.Time) string {
	starts := [...]time.Time{tl.start, tl.blackhole, tl.blackholeEnd, tl.delay, tl.delayEnd, tl.kill}
	p := tl.phase(at)
	s := fmt.Sprintf("%s +%v", faultPhases[p], at.Sub(starts[p]).Round(time.Millisecond))
	if p == phRestart && !tl.ready.IsZero() {
		s += fmt.Sprintf(" (ready %+v)", at.Sub(tl.ready).Round(time.Millisecond))
	}
	return s
}

// faultReport logs the figures of each phase.
func faultReport(t *testing.T, tl *faultTimeline, recs []faultRecord, releases []faultRelease) {
	t.Helper()
	type figures struct {
		requests, admitted, waiting, storeErr, otherErr, newAdmissions, degraded int
		maxPass, maxOther, maxRelease                                            time.Duration
		releases, releaseErr                                                     int
	}
	var ph [len(faultPhases)]figures
	for _, r := range recs {
		f := &ph[tl.phase(r.start)]
		f.requests++
		switch {
		case r.err != nil && errors.Is(r.err, waitingroom.ErrStore):
			f.storeErr++
		case r.err != nil:
			f.otherErr++
		case r.outcome == waitingroom.Admitted:
			f.admitted++
		case r.outcome == waitingroom.Waiting:
			f.waiting++
		}
		if r.newAdmit {
			f.newAdmissions++
		}
		if r.degraded {
			f.degraded++
		}
		if r.sent == sentPass {
			f.maxPass = max(f.maxPass, r.took)
		} else {
			f.maxOther = max(f.maxOther, r.took)
		}
	}
	for _, r := range releases {
		f := &ph[tl.phase(r.start)]
		f.releases++
		if r.err != nil {
			f.releaseErr++
		}
		f.maxRelease = max(f.maxRelease, r.took)
	}
	for i, f := range ph {
		t.Logf("%-16s %5d requests: %4d admitted (%3d new), %4d waiting, %4d store errors, %d other; %3d degraded; max Enter %v with a pass, %v without; %3d releases (%d failed), max %v",
			faultPhases[i], f.requests, f.admitted, f.newAdmissions, f.waiting, f.storeErr, f.otherErr, f.degraded,
			f.maxPass.Round(time.Millisecond), f.maxOther.Round(time.Millisecond), f.releases, f.releaseErr, f.maxRelease.Round(time.Millisecond))
	}
	for _, c := range []struct {
		name string
		back time.Time
	}{{"blackhole restored", tl.blackholeEnd}, {"delay restored", tl.delayEnd}, {"restarted server ready", tl.ready}} {
		if at, ok := firstNewAdmission(recs, c.back); ok {
			t.Logf("%s: first new admission %v later", c.name, at.Sub(c.back).Round(time.Millisecond))
		}
	}
	t.Logf("restart: kill to ready %v", tl.ready.Sub(tl.kill).Round(time.Millisecond))
	var calm []string // errors where the store was reachable all along
	for _, r := range recs {
		if p := tl.phase(r.start); r.err != nil && (p == phWarmUp || p == phAfterBlackhole || p == phAfterDelay) {
			calm = append(calm, fmt.Sprintf("visitor %d at %s on instance %d, sent %s, took %v: %v",
				r.visitor, tl.at(r.start), r.instance, r.sent, r.took.Round(time.Millisecond), r.err))
		}
	}
	if len(calm) > 0 {
		t.Logf("errors outside the faults:\n%s", strings.Join(first(calm, 10), "\n"))
	}
}

// firstNewAdmission is when the first request that newly admitted a visitor ended, at or
// after from.
func firstNewAdmission(recs []faultRecord, from time.Time) (time.Time, bool) {
	var best time.Time
	for _, r := range recs {
		if end := r.start.Add(r.took); r.newAdmit && !end.Before(from) && (best.IsZero() || end.Before(best)) {
			best = end
		}
	}
	return best, !best.IsZero()
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

// pause waits for d, or less if stop closes; it reports whether the run goes on.
func pause(stop <-chan struct{}, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-stop:
		return false
	case <-tm.C:
		return true
	}
}

// sentKind is what a request carried.
type sentKind uint8

const (
	sentNone sentKind = iota
	sentTicket
	sentPass
)

func (k sentKind) String() string { return [...]string{"nothing", "a ticket", "a pass"}[k] }

// faultRecord is one Enter as the visitor saw it.
type faultRecord struct {
	visitor   int
	sent      sentKind
	start     time.Time
	took      time.Duration
	outcome   waitingroom.Outcome // 0 on an error
	err       error
	newAdmit  bool       // the visitor was admitted to a new session
	validPass bool       // it sent a pass that was still valid (by a second)
	pass      token.Pass // the pass sent, if any
	degraded  bool
	stored    bool // the store answered it (a new ticket or pass: a join, a poll, a renewal)
	renewed   bool // the pass sent came back renewed
	instance  int
}

// faultRelease is one Release.
type faultRelease struct {
	visitor int
	start   time.Time
	took    time.Duration
	err     error
}

type faultSample struct {
	at              time.Time
	active, waiting int64
}

// faultVisitor is one visitor of the crowd, carrying its ticket or pass as a cookie would.
// Behind the load balancer, the stayers and half the others are sticky (one instance for
// every request); the rest go through a random instance each request.
type faultVisitor struct {
	id       int
	stayer   bool
	home     int // the instance of a sticky visitor; -1: a random one each request
	rng      *rand.Rand
	records  []faultRecord
	releases []faultRelease
}

func (v *faultVisitor) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(v.rng.Int64N(int64(hi-lo)+1))
}

func (v *faultVisitor) run(stop <-chan struct{}, rooms []*waitingroom.Room, lastNew *atomic.Int64) {
	var (
		raw     string // the cookie
		kind    sentKind
		pass    token.Pass
		leaveAt time.Time
	)
	for {
		select {
		case <-stop:
			return
		default:
		}
		inst := v.home
		if inst < 0 {
			inst = v.rng.IntN(len(rooms))
		}
		room := rooms[inst]
		if kind == sentPass && !v.stayer && !time.Now().Before(leaveAt) {
			// Done: the host releases the session. While the store fails it tries again, as
			// a retried "leave" would, until the pass runs out.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start := time.Now()
			err := room.Release(ctx, pass)
			cancel()
			v.releases = append(v.releases, faultRelease{visitor: v.id, start: start, took: time.Since(start), err: err})
			if err != nil && time.Now().Before(pass.Expires) {
				if !pause(stop, v.jitter(150*time.Millisecond, 250*time.Millisecond)) {
					return
				}
				continue
			}
			raw, kind, pass = "", sentNone, token.Pass{}
			// Back as a new visitor a moment later.
			if !pause(stop, v.jitter(200*time.Millisecond, time.Second)) {
				return
			}
			continue
		}

		r := faultRecord{visitor: v.id, sent: kind, start: time.Now(), instance: inst}
		if kind == sentPass {
			r.pass = pass
			r.validPass = r.start.Add(time.Second).Before(pass.Expires)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		visit, err := room.Enter(ctx, raw)
		cancel()
		r.took = time.Since(r.start)
		r.err, r.outcome, r.stored = err, visit.Outcome, visit.Token != ""
		var wait time.Duration
		switch {
		case err != nil:
			wait = v.jitter(200*time.Millisecond, 300*time.Millisecond) // the page retries
		case visit.Outcome == waitingroom.Admitted:
			if visit.Token != "" {
				raw = visit.Token
			}
			if kind != sentPass || visit.Pass.Session != pass.Session || visit.Pass.Epoch != pass.Epoch {
				r.newAdmit = true
				lastNew.Store(time.Now().UnixNano())
				leaveAt = time.Now().Add(v.jitter(time.Second, 4*time.Second))
			}
			r.renewed = !r.newAdmit && visit.Token != ""
			kind, pass = sentPass, visit.Pass
			r.degraded = visit.Degraded != nil
			wait = v.jitter(200*time.Millisecond, 500*time.Millisecond) // the next page
		case visit.Outcome == waitingroom.Waiting:
			if visit.Token != "" {
				raw = visit.Token
			}
			kind, pass = sentTicket, token.Pass{}
			wait = min(max(visit.Status.RefreshInterval, 100*time.Millisecond), 1500*time.Millisecond)
		default:
			wait = 300 * time.Millisecond
		}
		v.records = append(v.records, r)
		if !pause(stop, wait) {
			return
		}
	}
}

// throwawayRedis is a redis-server of the test's own, on a free loopback port.
type throwawayRedis struct {
	bin, dir, addr string
	port           int
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
	log            *mpBuffer
}

func startThrowawayRedis(t *testing.T, bin string) *throwawayRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if port == 6379 {
		t.Fatal("the free port is 6379; the fault run never uses a Redis it did not start")
	}
	r := &throwawayRedis{bin: bin, dir: t.TempDir(), port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	t.Cleanup(r.kill)
	r.start(t)
	return r
}

// start runs a new empty server and waits until it answers; it checks that what answers is
// the process it started, not another server that took the port. It returns when the server
// first took a connection.
func (r *throwawayRedis) start(t *testing.T) time.Time {
	t.Helper()
	cmd := exec.Command(r.bin, "--save", "", "--appendonly", "no", "--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1", "--dir", r.dir)
	log := &mpBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited, r.log = cmd, exited, log
	r.mu.Unlock()

	for deadline := time.Now().Add(10 * time.Second); ; {
		info, at, err := probeRedis(r.addr)
		if err == nil {
			if pid := infoField(info, "process_id"); pid != strconv.Itoa(cmd.Process.Pid) {
				t.Fatalf("%s answers as process %s, not the redis-server the test started (%d)", r.addr, pid, cmd.Process.Pid)
			}
			return at
		}
		select {
		case <-exited:
			t.Fatalf("redis-server on %s exited: %s", r.addr, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %v\n%s", r.addr, err, log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restart kills the server (SIGKILL: nothing saved) and starts a new empty one on its port
// after down.
func (r *throwawayRedis) restart(t *testing.T, down time.Duration) time.Time {
	t.Helper()
	r.kill()
	time.Sleep(down)
	return r.start(t)
}

func (r *throwawayRedis) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// probeRedis asks the server at addr for INFO server on a connection of its own (no client
// whose failed dials would hold back the next), and says when the connection was made.
func probeRedis(addr string) (string, time.Time, error) {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return "", time.Time{}, err
	}
	at := time.Now()
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return "", at, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil {
		return "", at, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || !strings.HasPrefix(head, "$") {
		return "", at, fmt.Errorf("INFO answered %q", head) // still loading, say
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", at, err
	}
	return string(body), at, nil
}

func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// lateRecounts explains a capacity overrun after the restart: the passes of the lost epoch
// that the new epoch counted again only after its recovery pause was over, when admissions
// had already filled the room, with their failed renewals before.
func lateRecounts(tl *faultTimeline, recs []faultRecord, recovery time.Duration) string {
	var back time.Time // the new server's first answer, which starts the recovery pause
	for _, r := range recs {
		if end := r.start.Add(r.took); r.stored && end.After(tl.kill.Add(faultDown/2)) && (back.IsZero() || end.Before(back)) {
			back = end
		}
	}
	if back.IsZero() {
		return ""
	}
	over := back.Add(recovery)
	var b strings.Builder
	fmt.Fprintf(&b, "\nthe new server answered first at %s; its recovery pause ended at %s", tl.at(back), tl.at(over))
	type ref struct{ epoch, session int64 }
	seen := map[ref]bool{}
	for _, r := range recs {
		k := ref{r.pass.Epoch, r.pass.Session}
		if !r.renewed || !r.start.After(tl.kill) || !r.pass.Admitted.Before(tl.kill) || seen[k] {
			continue
		}
		seen[k] = true
		if r.start.Add(r.took).Before(over) {
			continue
		}
		var failed []string
		for _, q := range recs {
			if q.visitor == r.visitor && q.degraded && q.start.After(tl.kill) && q.start.Before(r.start) {
				failed = append(failed, fmt.Sprintf("%s on instance %d", tl.at(q.start), q.instance))
			}
		}
		fmt.Fprintf(&b, "\n  visitor %d's pass (session %d of the lost epoch) was counted again only at %s on instance %d; its renewal had failed at %s",
			r.visitor, r.pass.Session, tl.at(r.start.Add(r.took)), r.instance, strings.Join(failed, ", "))
	}
	return b.String()
}
