package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
)

// Registry holds the rooms that share one store: those created through it (Create, Put),
// on any instance. Their settings live in the store (store.Control); Refresh, run once a
// second or more often by Watch, brings the registry up to date with it, so that a room
// created, changed or deleted on one instance is served so on every other within that
// interval. Each room is an ordinary *waitingroom.Room, which also learns of a change
// from its next store answer.
//
// A Registry is an http.Handler: it routes each request to its room's handler (see
// WithHandler) by host and longest path prefix (see WithRoute), and unmatched requests to
// the fallback (WithFallback). It is safe for concurrent use.
type Registry struct {
	store   store.Store
	ctl     store.Control
	opts    []waitingroom.Option
	route   func(id string) Route
	handler func(*waitingroom.Room) http.Handler
	log     *slog.Logger
	onTick  func(error)

	mu      sync.Mutex // serializes changes of rooms and the router
	rooms   atomic.Pointer[map[string]*Entry]
	router  *Router[*Entry]
	gen     int64 // the store's generation the rooms follow
	synced  bool  // gen is valid: one Refresh has completed
	touched time.Time
	revs    string // the cursor in the store's revocation log
}

// Entry is one room of a registry and the handler that serves it.
type Entry struct {
	Room    *waitingroom.Room
	Handler http.Handler
	Route   Route
}

// Option configures a Registry.
type Option func(*Registry) error

// WithRoomOptions are the options of every room (keys, clock, store timeout...). Every
// instance needs the same keys (waitingroom.WithKeys or WithCodec). Default: none, which
// suits a single process only.
func WithRoomOptions(opts ...waitingroom.Option) Option {
	return func(g *Registry) error { g.opts = append(g.opts, opts...); return nil }
}

// WithRoute maps a room's ID to the requests it serves. Default: the path prefix
// "/{id}/" on any host.
func WithRoute(f func(id string) Route) Option {
	return func(g *Registry) error {
		if f == nil {
			return errors.New("rooms: nil route function")
		}
		g.route = f
		return nil
	}
}

// WithHandler builds the handler of each room as it appears (say, middleware.Protect of
// the room around the tenant's app). Default: a handler that answers 404, for a registry
// used for its rooms alone.
func WithHandler(f func(*waitingroom.Room) http.Handler) Option {
	return func(g *Registry) error {
		if f == nil {
			return errors.New("rooms: nil handler function")
		}
		g.handler = f
		return nil
	}
}

// WithFallback serves the requests that match no room. Default: 404 Not Found.
func WithFallback(h http.Handler) Option {
	return func(g *Registry) error {
		if h == nil {
			return errors.New("rooms: nil fallback")
		}
		g.router.SetFallback(&Entry{Handler: h})
		return nil
	}
}

// WithLogger sets where the watch reports what it could not do. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(g *Registry) error { g.log = l; return nil }
}

// WithTickHook has Watch call f after each of its rounds, with the round's error (nil when
// the registry is up to date): for metrics, and for tests that wait for a round. Default:
// none.
func WithTickHook(f func(error)) Option {
	return func(g *Registry) error { g.onTick = f; return nil }
}

// Errors of a Registry.
var (
	// ErrNoControl: the store keeps no settings (it does not implement store.Control).
	ErrNoControl = errors.New("rooms: the store keeps no settings (store.Control)")
	// ErrNoRoom: no room of that ID.
	ErrNoRoom = errors.New("rooms: no such room")
)

// NewRegistry returns an empty registry on s; call Refresh (or Watch) to load the rooms
// the store lists.
func NewRegistry(s store.Store, opts ...Option) (*Registry, error) {
	ctl, ok := s.(store.Control)
	if !ok {
		return nil, ErrNoControl
	}
	g := &Registry{
		store:   s,
		ctl:     ctl,
		route:   func(id string) Route { return Route{Prefix: "/" + id + "/"} },
		handler: func(*waitingroom.Room) http.Handler { return http.NotFoundHandler() },
		log:     slog.Default(),
		router:  NewRouter[*Entry](),
	}
	g.router.SetFallback(&Entry{Handler: http.NotFoundHandler()})
	empty := map[string]*Entry{}
	g.rooms.Store(&empty)
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ServeHTTP routes r to its room's handler, or to the fallback.
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e, ok := g.router.Lookup(r); ok {
		e.Handler.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// Lookup returns the room that serves r (nil when none does).
func (g *Registry) Lookup(r *http.Request) *waitingroom.Room {
	e, ok := g.router.Lookup(r)
	if !ok {
		return nil
	}
	return e.Room // nil for the fallback
}

// Room returns the room id, if the registry holds it.
func (g *Registry) Room(id string) (*waitingroom.Room, bool) {
	e, ok := (*g.rooms.Load())[id]
	if !ok {
		return nil, false
	}
	return e.Room, true
}

// Rooms returns the registry's rooms, by ID.
func (g *Registry) Rooms() []*waitingroom.Room {
	m := *g.rooms.Load()
	out := make([]*waitingroom.Room, 0, len(m))
	for _, e := range m {
		out = append(out, e.Room)
	}
	slices.SortFunc(out, func(a, b *waitingroom.Room) int {
		switch {
		case a.ID() < b.ID():
			return -1
		case a.ID() > b.ID():
			return 1
		}
		return 0
	})
	return out
}

// Len is how many rooms the registry holds.
func (g *Registry) Len() int { return len(*g.rooms.Load()) }

// Put stores cfg as room id's settings, creating the room if it does not exist, if the
// stored version is ifVersion (0: create only; store.AnyVersion: whatever it is), and
// records change c. It returns the room and its new version. Errors wrap
// waitingroom.ErrConfig (a *waitingroom.ConfigError for cfg), waitingroom.ErrInvalidRoom
// or store.ErrVersion (a *store.VersionError); nothing is changed then.
func (g *Registry) Put(ctx context.Context, id string, cfg waitingroom.Config, ifVersion int64, c store.Change) (*waitingroom.Room, int64, error) {
	if !store.ValidRoom(id) {
		return nil, 0, waitingroom.ErrInvalidRoom
	}
	if err := cfg.Validate(); err != nil {
		return nil, 0, err
	}
	if _, err := canonRoute(g.route(id)); err != nil {
		return nil, 0, fmt.Errorf("room %q: %w", id, err) // before anything is stored
	}
	r, ok := g.Room(id)
	fresh := !ok
	if fresh {
		var err error
		if r, err = waitingroom.New(id, g.store, cfg, g.opts...); err != nil {
			return nil, 0, err
		}
		// An instance whose keys are not the room's changes nothing and serves nothing.
		if err := r.CheckKeys(ctx); err != nil {
			return nil, 0, err
		}
	}
	v, err := r.Update(ctx, cfg, ifVersion, c)
	if err != nil {
		return nil, 0, err
	}
	if fresh {
		g.mu.Lock()
		defer g.mu.Unlock()
		if cur, ok := (*g.rooms.Load())[id]; ok {
			r = cur.Room // the watch added it meanwhile; it follows the store
			_ = r.Sync(ctx)
		} else if err := g.add(id, r); err != nil {
			return nil, 0, err
		}
	}
	return r, v, nil
}

// Ensure returns room id, creating it with cfg if the store lists no such room: for a
// service that starts with its rooms in code. A room that exists keeps its stored
// settings (an operator's changes stand).
func (g *Registry) Ensure(ctx context.Context, id string, cfg waitingroom.Config) (*waitingroom.Room, error) {
	if r, ok := g.Room(id); ok {
		return r, nil
	}
	r, _, err := g.Put(ctx, id, cfg, 0, store.Change{By: "code", What: "create"})
	var ve *store.VersionError
	if errors.As(err, &ve) {
		// Stored but not in this registry yet: load it as the store has it. A room seeded
		// by a Room's own code but never listed is listed as it stands.
		if err := g.Refresh(ctx); err != nil {
			return nil, err
		}
		if r, ok := g.Room(id); ok {
			return r, nil
		}
		st, err := g.ctl.Settings(ctx, id)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, fmt.Errorf("%w: %q changed while it was created; try again", ErrNoRoom, id)
		}
		stored, err := waitingroom.DecodeConfig(st.Doc)
		if err != nil {
			return nil, err
		}
		r, _, err = g.Put(ctx, id, stored, st.Version, store.Change{By: "code", What: "create"})
		return r, err
	}
	return r, err
}

// Delete removes room id from the store, if its stored version is ifVersion
// (store.AnyVersion: whatever it is), and from the registry; every instance drops it at
// its next Refresh. Its visitors' state lapses as an idle room's does.
func (g *Registry) Delete(ctx context.Context, id string, ifVersion int64, c store.Change) error {
	if !store.ValidRoom(id) {
		return waitingroom.ErrInvalidRoom
	}
	if err := g.ctl.DeleteSettings(ctx, id, ifVersion, c); err != nil {
		var ve *store.VersionError
		if errors.As(err, &ve) {
			if ve.Stored == 0 {
				return fmt.Errorf("%w: %q", ErrNoRoom, id)
			}
			return ve
		}
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.remove(id)
	return nil
}

// Refresh brings the registry up to date with the store: rooms created elsewhere are
// added, deleted ones dropped, and changed ones read again (one store read per changed
// room). It costs one read when nothing changed.
func (g *Registry) Refresh(ctx context.Context) error {
	gen, err := g.ctl.Generation(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	same := g.synced && gen == g.gen
	g.mu.Unlock()
	if same {
		return nil
	}
	gen, listed, err := g.ctl.ListRooms(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := *g.rooms.Load()
	// The rooms to read: new ones and changed ones, read by a few goroutines at once (a
	// registry that starts on 10,000 rooms reads them all).
	var todo []string
	for id, v := range listed {
		if e, ok := cur[id]; !ok || e.Room.Version() < v {
			todo = append(todo, id)
		}
	}
	var (
		mu    sync.Mutex
		errs  []error
		added map[string]*Entry
		next  = make(chan string)
		wg    sync.WaitGroup
	)
	for range min(len(todo), 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				e, err := g.refreshOne(ctx, id, cur[id])
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("room %q: %w", id, err))
				case e != nil:
					if added == nil {
						added = map[string]*Entry{}
					}
					added[id] = e
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range todo {
		next <- id
	}
	close(next)
	wg.Wait()
	var gone []string
	for id := range cur {
		if _, ok := listed[id]; !ok {
			gone = append(gone, id)
		}
	}
	if len(added) > 0 || len(gone) > 0 {
		next := make(map[string]*Entry, len(cur)+len(added))
		for id, e := range cur {
			next[id] = e
		}
		for id, e := range added {
			next[id] = e
		}
		for _, id := range gone {
			delete(next, id)
		}
		routes := make(map[Route]*Entry, len(next))
		for _, e := range next {
			routes[e.Route] = e
		}
		// One swap of the whole table: a change per room would copy it once per room.
		if err := g.router.Replace(routes); err != nil {
			return err
		}
		g.rooms.Store(&next)
	}
	if len(errs) == 0 {
		g.gen, g.synced = gen, true
	}
	return errors.Join(errs...)
}

// refreshOne reads room id's settings (one store read): the existing room e adopts them;
// a new room is made and returned as an entry (nil when it has no settings any more).
func (g *Registry) refreshOne(ctx context.Context, id string, e *Entry) (*Entry, error) {
	st, err := g.ctl.Settings(ctx, id)
	if err != nil || st == nil {
		return nil, err
	}
	if e != nil {
		return nil, e.Room.Adopt(st)
	}
	cfg, err := waitingroom.DecodeConfig(st.Doc)
	if err != nil {
		return nil, err
	}
	r, err := waitingroom.New(id, g.store, cfg, g.opts...)
	if err != nil {
		return nil, err
	}
	if err := r.Adopt(st); err != nil {
		return nil, err
	}
	if err := r.CheckKeys(ctx); err != nil {
		return nil, err // not served here: Refresh reports it, and the watch logs it
	}
	return g.entry(id, r), nil
}

// entry makes room r's entry.
func (g *Registry) entry(id string, r *waitingroom.Room) *Entry {
	return &Entry{Room: r, Handler: g.handler(r), Route: g.route(id)}
}

// add puts room r in the registry; g.mu is held.
func (g *Registry) add(id string, r *waitingroom.Room) error {
	e := g.entry(id, r)
	if err := g.router.Set(e.Route, e); err != nil {
		return err
	}
	cur := *g.rooms.Load()
	next := make(map[string]*Entry, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[id] = e
	g.rooms.Store(&next)
	return nil
}

// remove drops room id; g.mu is held.
func (g *Registry) remove(id string) {
	cur := *g.rooms.Load()
	e, ok := cur[id]
	if !ok {
		return
	}
	g.router.Delete(e.Route)
	next := make(map[string]*Entry, len(cur))
	for k, v := range cur {
		if k != id {
			next[k] = v
		}
	}
	g.rooms.Store(&next)
}

// Watch runs Refresh every interval (at most a second, for changes to reach this
// instance within one; default 250 ms when interval is 0) until ctx ends, and keeps the
// rooms' settings in the store alive (Touch, hourly). Failures are logged, and the next
// tick tries again.
func (g *Registry) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.tick(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick is one round of Watch at now.
func (g *Registry) tick(ctx context.Context, now time.Time) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := g.Refresh(rctx)
	if err != nil && ctx.Err() == nil {
		g.log.Warn("waitingroom: rooms refresh failed", "err", err)
	}
	if g.onTick != nil {
		defer g.onTick(err)
	}
	// Released sessions, for every room at once: each refuses its passes from now on.
	if rs, next, err := g.ctl.Revocations(rctx, g.revs); err != nil {
		if ctx.Err() == nil {
			g.log.Warn("waitingroom: reading the revocations failed", "err", err)
		}
	} else {
		g.revs = next
		byRoom := map[string][]store.Revocation{}
		for _, x := range rs {
			byRoom[x.Room] = append(byRoom[x.Room], x)
		}
		for id, xs := range byRoom {
			if r, ok := g.Room(id); ok {
				r.ApplyRevocations(xs)
			}
		}
	}
	for _, e := range *g.rooms.Load() {
		// The last minutes of rooms gone quiet (a busy room records its own).
		if err := e.Room.FlushHistory(rctx); err != nil && ctx.Err() == nil {
			g.log.Warn("waitingroom: recording a room's history failed", "room", e.Room.ID(), "err", err)
		}
		// The instances serving a room with a fallback policy (every 10 s; others: nothing).
		if err := e.Room.Present(rctx); err != nil && ctx.Err() == nil {
			g.log.Warn("waitingroom: telling the store this instance serves a room failed", "room", e.Room.ID(), "err", err)
		}
	}
	if now.Sub(g.touched) >= time.Hour {
		ids := make([]string, 0, g.Len())
		for id := range *g.rooms.Load() {
			ids = append(ids, id)
		}
		if err := g.ctl.Touch(rctx, ids); err != nil {
			if ctx.Err() == nil {
				g.log.Warn("waitingroom: keeping the rooms' settings failed", "err", err)
			}
			return
		}
		g.touched = now
	}
}
