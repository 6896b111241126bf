package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/store"
)

// A room's history is a hash per hour, prefix:{room}:h:<Unix hour>, with a field per
// minute and count ("<minute of the hour>:<name>"), expiring store.HistoryTTL after its
// last write: 60 minutes a key, so reading an hour is one HGETALL.

//go:embed history.lua
var historyLua string

var historyScript = goredis.NewScript(historyLua)

func (s *Store) historyKey(room string, hour int64) string {
	return s.prefix + ":{" + room + "}:h:" + strconv.FormatInt(hour, 10)
}

// Record implements store.History.
func (s *Store) Record(ctx context.Context, room string, m store.Minute) error {
	if !store.ValidRoom(room) {
		return store.ErrInvalidRoom
	}
	min := m.Start.Unix() / 60
	args := []any{min % 60, store.HistoryTTL.Milliseconds(),
		"+j", m.Joins, "+a", m.Admissions, "^pw", m.PeakWaiting, "^pa", m.PeakActive,
		"^lw", m.LongestWait.Milliseconds()}
	if !m.WaitingAt.IsZero() {
		args = append(args, "@wa", m.WaitingAt.UnixMilli(), "w", m.Waiting)
	}
	for i, n := range m.Waits {
		if n != 0 {
			args = append(args, "+b"+strconv.Itoa(i), n)
		}
	}
	if err := historyScript.Run(ctx, s.client, []string{s.historyKey(room, min/60)}, args...).Err(); err != nil {
		return fmt.Errorf("store/redis: record: %w", err)
	}
	return nil
}

// Minutes implements store.History: one HGETALL per hour, in one pipeline.
func (s *Store) Minutes(ctx context.Context, room string, from, to time.Time) ([]store.Minute, error) {
	if !store.ValidRoom(room) {
		return nil, store.ErrInvalidRoom
	}
	lo, hi := from.Unix()/60, to.Unix()/60
	if hi < lo {
		return nil, nil
	}
	if hi-lo > int64(store.HistoryTTL/time.Minute) {
		lo = hi - int64(store.HistoryTTL/time.Minute) // nothing older is kept
	}
	var cmds []*goredis.MapStringStringCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for h := lo / 60; h <= hi/60; h++ {
			cmds = append(cmds, p.HGetAll(ctx, s.historyKey(room, h)))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store/redis: history: %w", err)
	}
	var out []store.Minute
	for i, c := range cmds {
		hour := lo/60 + int64(i)
		byMin := map[int64]*store.Minute{}
		for f, v := range c.Val() {
			ms, name, ok := strings.Cut(f, ":")
			mi, err1 := strconv.ParseInt(ms, 10, 64)
			n, err2 := strconv.ParseInt(v, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("store/redis: history: a malformed field %q", f)
			}
			start := hour*60 + mi
			if start < lo || start > hi {
				continue
			}
			m := byMin[start]
			if m == nil {
				m = &store.Minute{Start: time.Unix(start*60, 0)}
				byMin[start] = m
			}
			switch {
			case name == "j":
				m.Joins = n
			case name == "a":
				m.Admissions = n
			case name == "pw":
				m.PeakWaiting = n
			case name == "pa":
				m.PeakActive = n
			case name == "lw":
				m.LongestWait = time.Duration(n) * time.Millisecond
			case name == "wa":
				m.WaitingAt = time.UnixMilli(n)
			case name == "w":
				m.Waiting = n
			case strings.HasPrefix(name, "b"):
				if b, err := strconv.Atoi(name[1:]); err == nil && b >= 0 && b < len(m.Waits) {
					m.Waits[b] = n
				}
			}
		}
		for mi := int64(0); mi < 60; mi++ {
			if m := byMin[hour*60+mi]; m != nil {
				out = append(out, *m)
			}
		}
	}
	return out, nil
}

var _ store.History = (*Store)(nil)
