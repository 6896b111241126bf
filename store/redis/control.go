package redis

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// The control plane's keys. A room's settings and their trail share its hash tag
// (prefix:{room}:cfg, prefix:{room}:chg), so a change is one script on one slot, with the
// room's meta hash, whose field "v" caches the stored version for room.lua. The list of
// rooms is one hash, prefix:{rooms}: a field per listed room (its version) and "#gen",
// the generation. A change updates the room's keys first, then the list: on a Cluster they
// are on two slots. Every key expires store.SettingsTTL after its last change or Touch.

//go:embed control.lua
var controlLua string

var controlScript = goredis.NewScript(controlLua)

// settingsKeys are room's settings hash, trail and meta hash.
func (s *Store) settingsKeys(room string) []string {
	base := s.prefix + ":{" + room + "}:"
	return []string{base + "cfg", base + "chg", base + "m"}
}

// listKey is the hash that lists the rooms.
func (s *Store) listKey() string { return s.prefix + ":{rooms}" }

const genField = "#gen" // no room ID has a '#'

// Settings implements store.Control.
func (s *Store) Settings(ctx context.Context, room string) (*admission.Settings, error) {
	if !store.ValidRoom(room) {
		return nil, store.ErrInvalidRoom
	}
	v, err := s.client.HMGet(ctx, s.settingsKeys(room)[0], "v", "lim", "doc").Result()
	if err != nil {
		return nil, fmt.Errorf("store/redis: settings: %w", err)
	}
	if v[0] == nil {
		return nil, nil
	}
	ver, err1 := strconv.ParseInt(fmt.Sprint(v[0]), 10, 64)
	lim, ok1 := v[1].(string)
	doc, ok2 := v[2].(string)
	if err1 != nil || !ok1 || !ok2 {
		return nil, errors.New("store/redis: settings: a malformed settings hash")
	}
	l, err := decodeLimits([]byte(lim))
	if err != nil {
		return nil, err
	}
	return &admission.Settings{Version: ver, Limits: l, Doc: []byte(doc)}, nil
}

// PutSettings implements store.Control.
func (s *Store) PutSettings(ctx context.Context, room string, next admission.Settings, ifVersion int64, c store.Change) (int64, error) {
	next.Limits.Offer, next.Limits.LastEpoch = admission.Offer{}, 0
	return s.change(ctx, room, "put", ifVersion, encodeArgs(0, 0, next.Limits, store.Ref{Number: -1}), next.Doc, c)
}

// DeleteSettings implements store.Control.
func (s *Store) DeleteSettings(ctx context.Context, room string, ifVersion int64, c store.Change) error {
	_, err := s.change(ctx, room, "delete", ifVersion, nil, nil, c)
	return err
}

func (s *Store) change(ctx context.Context, room, op string, ifVersion int64, lim, doc []byte, c store.Change) (int64, error) {
	if !store.ValidRoom(room) {
		return 0, store.ErrInvalidRoom
	}
	ttl := store.SettingsTTL.Milliseconds()
	var now int64 // 0: the server's TIME
	if s.clock != nil {
		now = s.clock().UnixMilli()
	}
	v, err := controlScript.Run(ctx, s.client, s.settingsKeys(room), op, ifVersion, lim, doc, c.By, c.What, ttl, store.MaxChanges, now, coldLen).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("store/redis: %s settings: %w", op, err)
	}
	if len(v) == 2 && v[0] == -1 {
		return 0, &store.VersionError{Stored: v[1]}
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("store/redis: %s settings: unexpected reply %v", op, v)
	}
	// The list, after the room's own keys (another slot on a Cluster). If this fails the
	// change stands, and the error says the list may lag: a retry of the same change with
	// AnyVersion, or the next change, lists it.
	_, err = s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		k := s.listKey()
		if op == "put" {
			p.HSet(ctx, k, room, v[0])
		} else {
			p.HDel(ctx, k, room)
		}
		p.HIncrBy(ctx, k, genField, 1)
		p.PExpire(ctx, k, store.SettingsTTL)
		return nil
	})
	if err != nil {
		return v[0], fmt.Errorf("store/redis: settings stored, the room list not updated: %w", err)
	}
	return v[0], nil
}

// Changes implements store.Control.
func (s *Store) Changes(ctx context.Context, room string) ([]store.Change, error) {
	if !store.ValidRoom(room) {
		return nil, store.ErrInvalidRoom
	}
	raw, err := s.client.LRange(ctx, s.settingsKeys(room)[1], 0, store.MaxChanges-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store/redis: changes: %w", err)
	}
	out := make([]store.Change, 0, len(raw))
	for _, r := range raw {
		var e struct {
			Version, Previous int64
			At                float64
			By, What          string
			Prior             *string
		}
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, fmt.Errorf("store/redis: changes: a malformed entry: %w", err)
		}
		c := store.Change{Version: e.Version, Previous: e.Previous, At: time.UnixMilli(int64(e.At)), By: e.By, What: e.What}
		if e.Prior != nil {
			c.Prior = []byte(*e.Prior)
		}
		out = append(out, c)
	}
	return out, nil
}

// ListRooms implements store.Control.
func (s *Store) ListRooms(ctx context.Context) (int64, map[string]int64, error) {
	all, err := s.client.HGetAll(ctx, s.listKey()).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("store/redis: list rooms: %w", err)
	}
	var gen int64
	out := make(map[string]int64, len(all))
	for k, v := range all {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("store/redis: list rooms: %q is %q", k, v)
		}
		if k == genField {
			gen = n
		} else {
			out[k] = n
		}
	}
	return gen, out, nil
}

// Generation implements store.Control.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	g, err := s.client.HGet(ctx, s.listKey(), genField).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store/redis: generation: %w", err)
	}
	return g, nil
}

// keysScript stores a room's key fingerprints unless it has some (or ARGV[2] says
// replace) in its settings hash, and answers what it holds; a hash it creates expires.
var keysScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'keys')
if cur and ARGV[2] ~= '1' then return cur end
redis.call('HSET', KEYS[1], 'keys', ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return ARGV[1]
`)

// RoomKeys implements store.Control.
func (s *Store) RoomKeys(ctx context.Context, room string, k store.Keys, replace bool) (store.Keys, error) {
	if !store.ValidRoom(room) {
		return store.Keys{}, store.ErrInvalidRoom
	}
	b, err := json.Marshal(k)
	if err != nil {
		return store.Keys{}, err
	}
	flag := "0"
	if replace {
		flag = "1"
	}
	v, err := keysScript.Run(ctx, s.client, s.settingsKeys(room)[:1], b, flag, store.SettingsTTL.Milliseconds()).Text()
	if err != nil {
		return store.Keys{}, fmt.Errorf("store/redis: room keys: %w", err)
	}
	var out store.Keys
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return store.Keys{}, fmt.Errorf("store/redis: room keys: a malformed entry: %w", err)
	}
	return out, nil
}

// revocationsKey is the revocation log of all rooms: a stream.
func (s *Store) revocationsKey() string { return s.prefix + ":{rooms}:rev" }

// Revoke implements store.Control: one XADD, the stream capped (approximately) at
// store.MaxRevocations and expiring with the room list.
func (s *Store) Revoke(ctx context.Context, room string, ref store.Ref, until time.Time) error {
	if !store.ValidRoom(room) {
		return store.ErrInvalidRoom
	}
	_, err := s.client.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.XAdd(ctx, &goredis.XAddArgs{
			Stream: s.revocationsKey(), MaxLen: store.MaxRevocations, Approx: true,
			Values: []any{"r", room, "e", ref.Epoch, "n", ref.Number, "u", until.UnixMilli()},
		})
		p.PExpire(ctx, s.revocationsKey(), store.SettingsTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store/redis: revoke: %w", err)
	}
	return nil
}

// Revocations implements store.Control: one XRANGE after the cursor (a stream ID).
func (s *Store) Revocations(ctx context.Context, cursor string) ([]store.Revocation, string, error) {
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	msgs, err := s.client.XRangeN(ctx, s.revocationsKey(), start, "+", store.MaxRevocations).Result()
	if err != nil {
		return nil, cursor, fmt.Errorf("store/redis: revocations: %w", err)
	}
	out := make([]store.Revocation, 0, len(msgs))
	for _, m := range msgs {
		cursor = m.ID
		room, _ := m.Values["r"].(string)
		e, err1 := strconv.ParseInt(fmt.Sprint(m.Values["e"]), 10, 64)
		n, err2 := strconv.ParseInt(fmt.Sprint(m.Values["n"]), 10, 64)
		u, err3 := strconv.ParseInt(fmt.Sprint(m.Values["u"]), 10, 64)
		if !store.ValidRoom(room) || err1 != nil || err2 != nil || err3 != nil {
			continue // not ours to read
		}
		out = append(out, store.Revocation{Room: room, Session: store.Ref{Epoch: e, Number: n}, Until: time.UnixMilli(u)})
	}
	if cursor == "" {
		// An empty log: start from its end, not its beginning, next time too.
		cursor = "0-0"
	}
	return out, cursor, nil
}

// Touch implements store.Control: one pipeline of PEXPIREs (split by slot on a Cluster).
func (s *Store) Touch(ctx context.Context, rooms []string) error {
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.PExpire(ctx, s.listKey(), store.SettingsTTL)
		for _, r := range rooms {
			if !store.ValidRoom(r) {
				continue
			}
			k := s.settingsKeys(r)
			p.PExpire(ctx, k[0], store.SettingsTTL)
			p.PExpire(ctx, k[1], store.SettingsTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store/redis: touch: %w", err)
	}
	return nil
}

var _ store.Control = (*Store)(nil)
