package redis_test

import (
	"bufio"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

// The crowd of TestManyProcesses. Both limits bind, at different times, so that a store
// ignoring either would be caught: in the first minute the rate admits 400 while 100 places
// stay free; from the second on, sessions (about 110 s: 80% release after 60-120 s, the rest
// expire two minutes after their last request) keep the room full at about 250 a minute.
// The room is larger than 100/100 so that 5,000 visitors drain in 20 simulated minutes, about
// 130,000 operations: well under a minute of wall time, even with -race on two cores.
const (
	mpProcs       = 4
	mpVisitors    = 5000
	mpCapacity    = 500
	mpPerMinute   = 400
	mpSession     = 2 * time.Minute
	mpRefresh     = 20 * time.Second
	mpPollJitter  = 2 * time.Second  // waiters poll every mpRefresh plus up to this
	mpArrivals    = 2 * time.Minute  // everyone arrives within this
	mpGiveUp      = 0.10             // share of visitors who give up if still waiting
	mpRequest     = 30 * time.Second // admitted visitors' requests, plus up to 5 s
	mpStay        = time.Minute      // admitted visitors stay this plus up to another minute
	mpRelease     = 0.8              // share of leavers who release; the rest let it expire
	mpStep        = time.Second      // simulated time per lockstep step
	mpLimit       = 3 * time.Hour    // simulated time by which the room must have drained
	mpConcurrency = 16               // visitor goroutines per process within a step
	mpStepTimeout = time.Minute      // wall time a child may take to answer one step
)

// TestManyProcesses runs one waiting room on four app instances in separate OS processes,
// each with its own client and Room, against one Redis (or Cluster), and checks that together
// they behave exactly as one room: never more than TotalActiveUsers active, never more than
// NewUsersPerMinute grants in 60 s, admission in ticket order, everyone who stayed admitted.
//
// Time is simulated and shared: the parent moves it a step at a time and each child runs the
// visitor actions due by then concurrently, so the processes really race within each step.
// The parent samples the store's counters while the children work and after every step.
func TestManyProcesses(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		runManyProcesses(t, realClient(t), "redis")
	})
	t.Run("cluster", func(t *testing.T) {
		runManyProcesses(t, clusterClient(t), "cluster")
	})
}

// TestManyProcessesChild is one app instance of TestManyProcesses; it does nothing unless
// started by it. It reads "t <unix ms>" lines on stdin, runs every visitor action due by
// then, and answers "done <visitors still around>"; on "end" it reports each visitor as
// "v <id> <ticket> <admitted unix ms or -1> <gave up>" and then "end <enters> <releases>".
// A failed visitor action is reported as "error <text>" before "done".
func TestManyProcessesChild(t *testing.T) {
	if os.Getenv("WAITINGROOM_CHILD") != "1" {
		return
	}
	var spec mpSpec
	if err := json.Unmarshal([]byte(os.Getenv("WAITINGROOM_CHILD_SPEC")), &spec); err != nil {
		t.Fatalf("WAITINGROOM_CHILD_SPEC: %v", err)
	}
	var client goredis.UniversalClient
	if spec.Target == "cluster" {
		client = clusterClient(t)
	} else {
		client = realClient(t)
	}
	clock := storetest.NewClock(time.UnixMilli(spec.Start))
	room := mpRoom(t, client, spec, clock)

	var queue mpQueue
	var all []*mpVisitor
	for id := spec.Index; id < spec.Visitors; id += spec.Procs {
		v := newMPVisitor(id, spec)
		all = append(all, v)
		heap.Push(&queue, v)
	}
	var enters, releases atomic.Int64
	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "t":
			ms, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				t.Fatalf("bad step %q", in.Text())
			}
			clock.Advance(time.UnixMilli(ms).Sub(clock.Now()))
			var due []*mpVisitor
			for queue.Len() > 0 && queue[0].due <= ms {
				due = append(due, heap.Pop(&queue).(*mpVisitor))
			}
			errs := make([]error, len(due))
			sem := make(chan struct{}, mpConcurrency)
			var wg sync.WaitGroup
			for i, v := range due {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					errs[i] = v.act(ctx, room, clock.Now(), &enters, &releases)
				})
			}
			wg.Wait()
			for i, v := range due {
				if errs[i] != nil {
					fmt.Fprintf(out, "error visitor %d: %s\n", v.id, strings.ReplaceAll(errs[i].Error(), "\n", " "))
				}
				if v.state != mpDone && v.state != mpGone {
					heap.Push(&queue, v)
				}
			}
			fmt.Fprintf(out, "done %d\n", queue.Len())
		case "end":
			for _, v := range all {
				fmt.Fprintf(out, "v %d %d %d %t\n", v.id, v.ticket, v.admitted, v.state == mpGone)
			}
			fmt.Fprintf(out, "end %d %d\n", enters.Load(), releases.Load())
			if err := out.Flush(); err != nil {
				t.Fatal(err)
			}
			return
		default:
			t.Fatalf("unknown command %q", in.Text())
		}
		if err := out.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// The parent went away without "end": it failed, and kills us anyway.
}

// runManyProcesses is TestManyProcesses on one client: the parent's side.
func runManyProcesses(t *testing.T, client goredis.UniversalClient, target string) {
	began := time.Now()
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	spec := mpSpec{
		Target:    target,
		Prefix:    "wrtest-" + randomHex(6),
		Room:      "many-processes",
		Keys:      token.FormatKeys(key),
		Procs:     mpProcs,
		Visitors:  mpVisitors,
		Seed:      uint64(time.Now().UnixNano()),
		Start:     start.UnixMilli(),
		Capacity:  mpCapacity,
		PerMinute: mpPerMinute,
	}
	t.Logf("seed %d, prefix %s", spec.Seed, spec.Prefix)
	t.Cleanup(func() { deletePrefix(t, client, spec.Prefix) }) // runs after the children are gone

	children := make([]*mpChild, mpProcs)
	for i := range children {
		s := spec
		s.Index = i
		children[i] = startMPChild(t, i, s)
	}
	clock := storetest.NewClock(start)
	room := mpRoom(t, client, spec, clock)
	ctx := context.Background()

	var (
		granted   []int64 // second -> the store's Admissions after that second's step
		peak      int64   // most active sessions in any sample
		maxWindow int64   // most grants in any 60 s
		last      int64   // Admissions in the previous sample: it never goes back
		samples   int
		steps     int
	)
	check := func(s store.Stats, err error) {
		t.Helper()
		samples++
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		sec := s.Now.Sub(start).Milliseconds() / 1000
		if s.Active > mpCapacity {
			t.Fatalf("t=%ds: %d active sessions, capacity %d", sec, s.Active, mpCapacity)
		}
		if s.Admissions < last {
			t.Fatalf("t=%ds: admissions went back from %d to %d", sec, last, s.Admissions)
		}
		last = s.Admissions
		w := s.Admissions
		if sec >= 60 {
			w -= granted[sec-60]
		}
		if w > mpPerMinute {
			t.Fatalf("t=%ds: %d admissions in the last 60 s, limit %d", sec, w, mpPerMinute)
		}
		peak, maxWindow = max(peak, s.Active), max(maxWindow, w)
	}

	var stopSampling func() []mpSample
	defer func() { // on failure, before the client closes
		if stopSampling != nil {
			stopSampling()
		}
	}()
	endBy := start.Add(mpLimit)
	for now := start; ; now = now.Add(mpStep) {
		if now.After(endBy) {
			t.Fatalf("not drained after %v of simulated time", mpLimit)
		}
		clock.Advance(now.Sub(clock.Now()))
		stopSampling = sampleStats(ctx, room) // while the children work
		for _, c := range children {
			c.send(t, fmt.Sprintf("t %d", now.UnixMilli()))
		}
		var around int
		var failures []string
		for _, c := range children {
			for {
				cmd, arg := c.read(t)
				if cmd == "error" {
					failures = append(failures, fmt.Sprintf("process %d: %s", c.index, arg))
					continue
				}
				if cmd != "done" {
					t.Fatalf("process %d answered %q to a step", c.index, cmd+" "+arg)
				}
				n, _ := strconv.Atoi(arg)
				around += n
				break
			}
		}
		samples := stopSampling()
		stopSampling = nil
		for _, s := range samples {
			check(s.Stats, s.err)
		}
		if len(failures) > 0 {
			t.Fatalf("t=%v: %d failed visitor actions, first: %s", now.Sub(start), len(failures), failures[0])
		}
		s, err := room.Stats(ctx)
		granted = append(granted, s.Admissions)
		check(s, err)
		steps++
		if around == 0 {
			break
		}
	}
	drained := clock.Now()

	// Each child's account of its visitors.
	var visitors []mpResult
	var enters, releases int64
	for _, c := range children {
		c.send(t, "end")
		for {
			cmd, arg := c.read(t)
			if cmd == "end" {
				var e, r int64
				if _, err := fmt.Sscan(arg, &e, &r); err != nil {
					t.Fatalf("process %d: end %q: %v", c.index, arg, err)
				}
				enters, releases = enters+e, releases+r
				break
			}
			var v mpResult
			if _, err := fmt.Sscan(arg, &v.id, &v.ticket, &v.admitted, &v.gaveUp); cmd != "v" || err != nil {
				t.Fatalf("process %d: %q: %v", c.index, cmd+" "+arg, err)
			}
			visitors = append(visitors, v)
		}
		c.finish(t)
	}

	// Everyone is accounted for once, on a ticket of their own, and got in or gave up.
	if len(visitors) != mpVisitors {
		t.Fatalf("%d visitors reported, want %d", len(visitors), mpVisitors)
	}
	var admitted, gaveUp int
	seen := map[int]bool{}
	tickets := map[int64]int{}
	perSecond := map[int64]int{}
	for _, v := range visitors {
		if seen[v.id] {
			t.Fatalf("visitor %d reported twice", v.id)
		}
		seen[v.id] = true
		if v.ticket < 0 {
			t.Fatalf("visitor %d never got a ticket", v.id)
		}
		if other, dup := tickets[v.ticket]; dup {
			t.Fatalf("visitors %d and %d hold ticket %d", other, v.id, v.ticket)
		}
		tickets[v.ticket] = v.id
		switch {
		case v.gaveUp:
			gaveUp++
		case v.admitted < 0:
			t.Fatalf("visitor %d stayed and was never admitted", v.id)
		default:
			admitted++
			perSecond[(v.admitted-start.UnixMilli())/1000]++
		}
	}
	if gaveUp == 0 || admitted+gaveUp != mpVisitors {
		t.Fatalf("admitted %d + gave up %d, want %d with some giving up", admitted, gaveUp, mpVisitors)
	}
	// A waiter learns of its grant at its next poll: it enters up to one poll interval (and
	// a step) after the grant. So the visitors' own account agrees with the store's counter:
	// those entering in any 60 s had their slots granted in those 60 s or just before.
	// (Entries alone may exceed the rate in some 60 s: grants made just before are claimed
	// late, together with the window's own.)
	tolerance := mpRefresh + mpPollJitter + mpStep
	lag := int64(tolerance / time.Second)
	var entries []int // second -> visitors entered up to then
	for sec := range int64(len(granted)) {
		entries = append(entries, perSecond[sec])
		if sec > 0 {
			entries[sec] += entries[sec-1]
		}
		n, grants := entries[sec], granted[sec]
		if sec >= 60 {
			n -= entries[sec-60]
		}
		if sec >= 60+lag {
			grants -= granted[sec-60-lag]
		}
		if int64(n) > grants {
			t.Fatalf("%d visitors entered in the 60 s up to t=%ds, on %d grants since t=%ds", n, sec, grants, sec-60-lag)
		}
	}
	// Ticket order: slots are granted strictly in ticket order, so nobody enters more than
	// one poll interval (and a step) before an earlier ticket that stayed.
	slices.SortFunc(visitors, func(a, b mpResult) int { return cmp.Compare(a.ticket, b.ticket) })
	var latest, latestTicket int64
	for _, v := range visitors {
		if v.admitted < 0 {
			continue
		}
		if v.admitted+tolerance.Milliseconds() < latest {
			t.Fatalf("ticket %d entered at t=%.1fs, before ticket %d at t=%.1fs", v.ticket,
				float64(v.admitted-start.UnixMilli())/1000, latestTicket, float64(latest-start.UnixMilli())/1000)
		}
		if v.admitted > latest {
			latest, latestTicket = v.admitted, v.ticket
		}
	}

	// Past every session and the hold, the room is empty.
	clock.Advance(max(mpSession, room.Config().QueueHold) + 10*time.Second)
	final, err := room.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if final.Active != 0 || final.Waiting != 0 {
		t.Errorf("room not empty at the end: %+v", final)
	}
	if final.Admissions < int64(admitted) {
		t.Errorf("%d grants for %d admitted visitors", final.Admissions, admitted)
	}
	t.Logf("%s: %d processes, %d steps (%v simulated), %d operations (%d Enter, %d Release), "+
		"%d admitted, %d gave up, %d grants, peak active %d (limit %d), at most %d admissions in 60 s (limit %d), "+
		"%d samples, wall %v",
		target, mpProcs, steps, drained.Sub(start), enters+releases, enters, releases,
		admitted, gaveUp, final.Admissions, peak, mpCapacity, maxWindow, mpPerMinute,
		samples, time.Since(began).Round(time.Millisecond))
}

// mpSpec is what the parent tells a child, as JSON in WAITINGROOM_CHILD_SPEC.
type mpSpec struct {
	Target    string // "redis" (WAITINGROOM_REDIS_ADDR) or "cluster" (..._CLUSTER_ADDRS)
	Prefix    string
	Room      string
	Keys      string // token.ParseKeys form
	Index     int    // this child's; it runs visitors Index, Index+Procs, ...
	Procs     int
	Visitors  int
	Seed      uint64
	Start     int64 // simulated start, unix ms
	Capacity  int
	PerMinute int
}

// mpRoom is an app instance's room on its own store, both on the simulated clock.
func mpRoom(t *testing.T, client goredis.UniversalClient, spec mpSpec, clock *storetest.Clock) *waitingroom.Room {
	keys, err := token.ParseKeys(spec.Keys)
	if err != nil {
		t.Fatal(err)
	}
	st, err := redis.New(client, redis.WithPrefix(spec.Prefix), redis.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	room, err := waitingroom.New(spec.Room, st, waitingroom.Config{
		TotalActiveUsers:  spec.Capacity,
		NewUsersPerMinute: spec.PerMinute,
		SessionDuration:   mpSession,
		RefreshInterval:   mpRefresh,
	}, waitingroom.WithKeys(keys...), waitingroom.WithClock(clock.Now),
		// Five processes and Redis share two cores under the race detector: the default
		// 500 ms would fail on scheduling delays, not on the store.
		waitingroom.WithStoreTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return room
}

type mpState uint8

const (
	mpNew mpState = iota
	mpWaiting
	mpAdmitted
	mpDone
	mpGone
)

// mpVisitor is a browser: a cookie and a plan. Only its own goroutine touches it in a step.
type mpVisitor struct {
	id       int
	rng      *rand.Rand
	due      int64 // unix ms of its next action
	state    mpState
	cookie   string
	ticket   int64 // first ticket (or session, when admitted at once); -1 before
	giveUp   int64 // unix ms it leaves the queue; 0 if it waits for ever
	admitted int64 // unix ms of its admission; -1 before
	leave    int64
	release  bool
	pass     token.Pass
}

func newMPVisitor(id int, spec mpSpec) *mpVisitor {
	rng := rand.New(rand.NewPCG(spec.Seed, uint64(id)))
	v := &mpVisitor{id: id, rng: rng, ticket: -1, admitted: -1}
	v.due = spec.Start + rng.Int64N(mpArrivals.Milliseconds())
	if rng.Float64() < mpGiveUp {
		v.giveUp = v.due + time.Minute.Milliseconds() + rng.Int64N((20 * time.Minute).Milliseconds())
	}
	return v
}

// act is the visitor's action at now: join, poll, request, give up or leave.
func (v *mpVisitor) act(ctx context.Context, room *waitingroom.Room, now time.Time, enters, releases *atomic.Int64) error {
	ms := now.UnixMilli()
	switch {
	case v.state == mpWaiting && v.giveUp != 0 && ms >= v.giveUp:
		v.state = mpGone
		return nil
	case v.state == mpAdmitted && ms >= v.leave:
		v.state = mpDone
		if !v.release {
			return nil
		}
		releases.Add(1)
		return room.Release(ctx, v.pass)
	}
	enters.Add(1)
	visit, err := room.Enter(ctx, v.cookie)
	if err != nil {
		return err
	}
	if visit.Token != "" {
		v.cookie = visit.Token
	}
	switch visit.Outcome {
	case waitingroom.Waiting:
		if v.state == mpAdmitted {
			return fmt.Errorf("admitted at %d, waiting again at %d", v.admitted, ms)
		}
		tk, err := room.Codec().ParseTicket(room.ID(), v.cookie, now)
		if err != nil {
			return err
		}
		if v.ticket < 0 {
			v.ticket = tk.Number
		} else if tk.Number != v.ticket {
			return fmt.Errorf("polling on time, lost its place: ticket %d became %d", v.ticket, tk.Number)
		}
		v.state = mpWaiting
		v.due = ms + mpRefresh.Milliseconds() + v.rng.Int64N(mpPollJitter.Milliseconds())
		if v.giveUp != 0 {
			v.due = min(v.due, v.giveUp)
		}
	case waitingroom.Admitted:
		v.pass = visit.Pass
		if v.state != mpAdmitted {
			if v.ticket < 0 {
				v.ticket = visit.Pass.Session
			} else if visit.Pass.Session != v.ticket {
				return fmt.Errorf("ticket %d admitted to session %d", v.ticket, visit.Pass.Session)
			}
			v.state, v.admitted = mpAdmitted, ms
			v.leave = ms + mpStay.Milliseconds() + v.rng.Int64N(mpStay.Milliseconds())
			v.release = v.rng.Float64() < mpRelease
		}
		v.due = min(ms+mpRequest.Milliseconds()+v.rng.Int64N(5000), v.leave)
	default:
		return fmt.Errorf("unexpected outcome %v", visit.Outcome)
	}
	return nil
}

// mpQueue orders a child's visitors by their next action.
type mpQueue []*mpVisitor

func (q mpQueue) Len() int { return len(q) }
func (q mpQueue) Less(i, j int) bool {
	if q[i].due != q[j].due {
		return q[i].due < q[j].due
	}
	return q[i].id < q[j].id
}
func (q mpQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mpQueue) Push(x any)   { *q = append(*q, x.(*mpVisitor)) }
func (q *mpQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// mpResult is a child's account of one visitor.
type mpResult struct {
	id       int
	ticket   int64
	admitted int64
	gaveUp   bool
}

type mpSample struct {
	store.Stats
	err error
}

// sampleStats reads the room's counters back to back until stop is called, which returns them.
func sampleStats(ctx context.Context, room *waitingroom.Room) (stop func() []mpSample) {
	done, got := make(chan struct{}), make(chan []mpSample, 1)
	go func() {
		var ss []mpSample
		for {
			select {
			case <-done:
				got <- ss
				return
			default:
			}
			s, err := room.Stats(ctx)
			ss = append(ss, mpSample{s, err})
		}
	}()
	return func() []mpSample {
		close(done)
		return <-got
	}
}

// mpChild is a child process as the parent sees it.
type mpChild struct {
	index  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string   // its stdout, closed at EOF
	quit   chan struct{} // closed when nobody reads lines any more
	eof    chan struct{} // closed when stdout is read to the end
	other  []string      // stdout that is not the protocol: the test framework's output
	stderr *mpBuffer
	waited bool
}

// startMPChild re-executes the test binary as app instance i, to be killed if the test fails.
func startMPChild(t *testing.T, i int, spec mpSpec) *mpChild {
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestManyProcessesChild$")
	cmd.Env = append(os.Environ(), "WAITINGROOM_CHILD=1", "WAITINGROOM_CHILD_SPEC="+string(js))
	c := &mpChild{index: i, cmd: cmd, lines: make(chan string), quit: make(chan struct{}),
		eof: make(chan struct{}), stderr: &mpBuffer{}}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.eof)
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit:
			}
		}
	}()
	t.Cleanup(func() {
		close(c.quit)
		if !c.waited {
			c.cmd.Process.Kill()
			<-c.eof
			c.cmd.Wait()
		}
	})
	return c
}

func (c *mpChild) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("process %d: %v\n%s", c.index, err, c.output())
	}
}

// read returns the next protocol line, split at its first space.
func (c *mpChild) read(t *testing.T) (cmd, arg string) {
	t.Helper()
	timeout := time.NewTimer(mpStepTimeout)
	defer timeout.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.cmd.Wait()
				c.waited = true
				t.Fatalf("process %d exited (%v):\n%s", c.index, c.cmd.ProcessState, c.output())
			}
			cmd, arg, _ := strings.Cut(line, " ")
			switch cmd {
			case "t", "done", "error", "v", "end":
				return cmd, arg
			}
			c.other = append(c.other, line)
		case <-timeout.C:
			t.Fatalf("process %d did not answer within %v:\n%s", c.index, mpStepTimeout, c.output())
		}
	}
}

// finish waits for a child that was told "end" to exit successfully.
func (c *mpChild) finish(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	for line := range c.lines {
		c.other = append(c.other, line)
	}
	err := c.cmd.Wait()
	c.waited = true
	if err != nil {
		t.Fatalf("process %d: %v\n%s", c.index, err, c.output())
	}
}

func (c *mpChild) output() string {
	return "stdout:\n" + strings.Join(c.other, "\n") + "\nstderr:\n" + c.stderr.String()
}

// mpBuffer is a child's stderr, written by exec's copier while the test may read it.
type mpBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *mpBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *mpBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
