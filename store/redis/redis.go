// Package redis is a store.Store on Redis, so that many app instances share one waiting room:
// a single server, Sentinel (a failover client) or a Redis Cluster.
//
// Every operation is one call of a Lua library, room.lua: one round trip, atomic, on the
// server's clock (TIME), so app instances whose clocks disagree admit exactly as one process
// would. On Redis 7 the library is a Redis Function (FCALL; the store loads it with FUNCTION
// LOAD on every primary when a server lacks it, say after a restart), so its Lua functions
// are created once, not on every call; where Functions are missing (Redis 6, miniredis) it
// runs as a script with EVALSHA (EVAL once when the server does not have it yet). The
// library's name carries a hash of its code, so instances of different versions do not
// replace each other's. All keys of a room share one hash tag,
// prefix:{room}:..., so a script never crosses Cluster slots. Every key has a TTL; an idle
// room disappears by itself. No operation uses KEYS or SCAN. The room's settings hash
// (prefix:{room}:cfg, see control.go) also holds the host's count of slots left
// (store.Slots), which room.lua reads with every join, poll and stats operation.
//
// Memory: a waiting visitor costs 4 bytes (its liveness, in 16 KiB strings of 4,094
// tickets) until admission passes its ticket; the rest is per room and small (see README).
//
// The store applies the rules of package admission exactly as store/memory does; a
// differential test holds the two to the same answers. One piece of pure arithmetic, Random's
// spread of poll times (admission.RandomPoll), is worked out here in Go from the script's
// reply rather than in the script, where it cost more than the rest of a poll's logic.
package redis

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Store is a store.Store on a Redis server or Cluster. It is safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	prefix string
	clock  func() time.Time
	eval   atomic.Bool // the server has no Functions: run the library as a script
}

// Option configures a Store.
type Option func(*Store) error

// WithPrefix sets the first part of every key: prefix:{room}:... Default "wr". Give each
// application sharing a Redis its own.
func WithPrefix(p string) Option {
	return func(s *Store) error {
		if p == "" || strings.ContainsAny(p, "{}") {
			return fmt.Errorf("%w: %q", ErrPrefix, p)
		}
		s.prefix = p
		return nil
	}
}

// WithClock makes the store pass its own clock to Redis instead of reading the server's
// TIME. For tests that simulate time on a real server only: with more than one app instance
// the server's clock is the one clock they share.
func WithClock(now func() time.Time) Option {
	return func(s *Store) error { s.clock = now; return nil }
}

// Errors of New.
var (
	ErrPrefix = errors.New("store/redis: invalid key prefix (non-empty, no braces)")
	// ErrNoDeadlines: the client would not end a call at the context's deadline, so a slow
	// Redis could hold requests for its ReadTimeout. Set ContextTimeoutEnabled in its options.
	ErrNoDeadlines = errors.New("store/redis: the client ignores context deadlines; set ContextTimeoutEnabled: true in its options")
)

// New returns a Store on client: a *goredis.Client (also from NewFailoverClient, for
// Sentinel), a *goredis.ClusterClient or a *goredis.Ring (each room lives on one shard).
// The client must honour context deadlines (ContextTimeoutEnabled), so that the room's
// store timeout bounds every call.
func New(client goredis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("store/redis: nil client")
	}
	if !honoursDeadlines(client) {
		return nil, ErrNoDeadlines
	}
	s := &Store{client: client, prefix: "wr"}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	v, stale, err := s.run(ctx, opJoin, room, l, store.Ref{}, len(resultFields))
	if err != nil {
		return store.Result{}, err
	}
	r, err := decodeResult(v, refreshOf(l, stale))
	r.Settings = stale
	return r, err
}

// Poll implements store.Store.
func (s *Store) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	v, stale, err := s.run(ctx, opPoll, room, l, t, len(resultFields))
	if err != nil {
		return store.Result{}, err
	}
	r, err := decodeResult(v, refreshOf(l, stale))
	r.Settings = stale
	return r, err
}

// refreshOf is the refresh interval an operation ran by: the caller's, or the stored
// settings' when they replaced its limits (their lim, as the script applied it).
func refreshOf(l admission.Limits, stale *admission.Settings) time.Duration {
	if stale != nil && stale.Limits.Refresh > 0 {
		return stale.Limits.Refresh
	}
	return l.Refresh
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, room string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	v, stale, err := s.run(ctx, opRenew, room, l, ref, len(renewalFields))
	if err != nil {
		return store.Renewal{}, err
	}
	r, err := decodeRenewal(v)
	r.Settings = stale
	return r, err
}

// Revive implements store.Store.
func (s *Store) Revive(ctx context.Context, room string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	v, stale, err := s.run(ctx, opRevive, room, l, ref, len(renewalFields))
	if err != nil {
		return store.Renewal{}, err
	}
	r, err := decodeRenewal(v)
	r.Settings = stale
	return r, err
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, room string, ref store.Ref) error {
	_, _, err := s.run(ctx, opRelease, room, admission.Limits{}, ref, 0)
	return err
}

// Stats implements store.Store. An unknown room has zero counters and is not created.
func (s *Store) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	l.Offer.Doc = nil // a reading stores nothing
	v, stale, err := s.run(ctx, opStats, room, l, store.Ref{}, len(statsFields))
	if err != nil {
		return store.Stats{}, err
	}
	st, err := decodeStats(v)
	st.Settings = stale
	return st, err
}

// Keys returns the keys of a room: the meta hash (the room's counters, live waiters by
// bucket), claimed sessions, pending grants, recovered places and the rate window. They
// share the hash tag {room}: one Cluster slot. The script is given the first and names the
// others after it, the last letter replaced; liveness strings likewise, with
// "q:<epoch>:<chunk>" in place of "m".
func Keys(prefix, room string) []string {
	base := prefix + ":{" + room + "}:"
	return []string{base + "m", base + "s", base + "g", base + "r", base + "w"}
}

//go:embed room.lua
var roomLua string

const libPrefix = "waitingroom_"

var (
	// library is room.lua as a Redis Function library, named (as is its one function) by a
	// hash of its code.
	libName = libPrefix + codeHash(luaHeader+roomLua)
	library = "#!lua name=" + libName + "\n" + luaHeader + "local function getStruct() return struct end\n" + roomLua +
		"\nredis.register_function('" + libName + "', function(keys, args) return run(keys, args) end)\n"
	// script is room.lua as a script, for servers without Functions. A script may not read a
	// global that is not there (miniredis has no struct), but it may ask with pcall; a
	// library being loaded may not call pcall.
	script = goredis.NewScript(luaHeader +
		"local function getStruct() local ok, st = pcall(function() return struct end) if ok then return st end end\n" +
		roomLua + "\nreturn run(KEYS, ARGV)\n")
)

func codeHash(code string) string {
	h := sha1.Sum([]byte(code))
	return hex.EncodeToString(h[:6])
}

// call runs the library once: FCALL, loading the library first where the server lacks it,
// or the script where the server has no Functions.
func (s *Store) call(ctx context.Context, keys []string, args []any) *goredis.Cmd {
	if !s.eval.Load() {
		cmd := s.client.FCall(ctx, libName, keys, args...)
		err := cmd.Err()
		switch {
		case err == nil || errors.Is(err, goredis.Nil):
			return cmd
		case unsupported(err):
			s.eval.Store(true)
		case strings.Contains(err.Error(), "Function not found"):
			if err := s.load(ctx); err != nil {
				if !unsupported(err) {
					cmd.SetErr(err)
					return cmd
				}
				s.eval.Store(true)
				break
			}
			return s.client.FCall(ctx, libName, keys, args...)
		default:
			return cmd
		}
	}
	return script.Run(ctx, s.client, keys, args...)
}

// load puts the library on every primary (REPLACE: instances may race to it).
func (s *Store) load(ctx context.Context) error {
	one := func(ctx context.Context, c *goredis.Client) error {
		return c.FunctionLoadReplace(ctx, library).Err()
	}
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, one)
	case *goredis.Ring:
		return c.ForEachShard(ctx, one)
	}
	return s.client.FunctionLoadReplace(ctx, library).Err()
}

// RemoveOldLibraries deletes the Function libraries of other versions of this package from
// every primary and reports how many it deleted. Each version of the store's Lua code is a
// library of its own (about 25 KB of server memory), so that instances of two versions can
// run side by side during a deploy; the old ones stay until removed. Call it once every
// instance runs this version (say, from a deploy hook). An instance still on an old version
// would only load its library again, at the cost of one call.
func (s *Store) RemoveOldLibraries(ctx context.Context) (int, error) {
	var removed atomic.Int64
	one := func(ctx context.Context, c *goredis.Client) error {
		libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{LibraryNamePattern: libPrefix + "*"}).Result()
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if lib.Name == libName || !strings.HasPrefix(lib.Name, libPrefix) {
				continue
			}
			if err := c.FunctionDelete(ctx, lib.Name).Err(); err != nil && !strings.Contains(err.Error(), "not exist") {
				return err
			}
			removed.Add(1)
		}
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, one)
	case *goredis.Ring:
		err = c.ForEachShard(ctx, one)
	case *goredis.Client:
		err = one(ctx, c)
	default:
		return 0, errors.New("store/redis: RemoveOldLibraries needs a *Client, *ClusterClient or *Ring")
	}
	return int(removed.Load()), err
}

// unsupported reports whether err says the server has no Functions, or that this client
// may not use them (an ACL without FCALL or FUNCTION): scripts then.
func unsupported(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown subcommand") ||
		strings.HasPrefix(msg, "noperm")
}

// run does one operation of the script, whose reply has n int64s (and, after them, the
// stored settings when the caller's version differed).
func (s *Store) run(ctx context.Context, op int, room string, l admission.Limits, ref store.Ref, n int) ([]int64, *admission.Settings, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if !store.ValidRoom(room) {
		return nil, nil, store.ErrInvalidRoom
	}
	var now int64 // 0: the server's TIME
	if s.clock != nil {
		now = s.clock().UnixMilli()
	}
	args := []any{encodeArgs(op, now, l, ref)}
	if l.Offer.Doc != nil {
		args = append(args, l.Offer.Doc) // a seed or an overwrite (admission.Settle)
	}
	reply, err := s.call(ctx, Keys(s.prefix, room)[:1], args).Text()
	if err != nil {
		// At the context's deadline the client reports a bare i/o timeout, often a moment
		// before the context itself says so; say why it stopped.
		cerr := ctx.Err()
		if _, ok := ctx.Deadline(); ok && cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			cerr = context.DeadlineExceeded
		}
		name := [...]string{opJoin: "join", opPoll: "poll", opRenew: "renew", opRelease: "release", opStats: "stats", opRevive: "revive"}[op]
		if cerr != nil {
			return nil, nil, fmt.Errorf("store/redis: %s: %w (%w)", name, cerr, err)
		}
		return nil, nil, fmt.Errorf("store/redis: %s: %w", name, err)
	}
	return decodeReply(reply, n)
}

func errReply(v []int64) error {
	return fmt.Errorf("store/redis: unexpected reply %v", v)
}

// honoursDeadlines reports whether the client ends calls at context deadlines. Clients of
// other types (wrappers, mocks) are trusted.
func honoursDeadlines(c goredis.UniversalClient) bool {
	switch c := c.(type) {
	case *goredis.Client:
		return c.Options().ContextTimeoutEnabled
	case *goredis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *goredis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}
