package waitingroom_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// Every broken rule is one *ConfigError naming the field, from Validate and from New alike.
func TestConfigErrorsNameTheField(t *testing.T) {
	ok := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 5}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		field string
		f     func(*waitingroom.Config)
	}{
		{"TotalActiveUsers", func(c *waitingroom.Config) { c.TotalActiveUsers = 0 }},
		{"NewUsersPerMinute", func(c *waitingroom.Config) { c.NewUsersPerMinute = -1 }},
		{"NewUsersPerMinute", func(c *waitingroom.Config) { c.NewUsersPerMinute = 11 }},
		{"SessionDuration", func(c *waitingroom.Config) { c.SessionDuration = time.Second }},
		{"QueueingMethod", func(c *waitingroom.Config) { c.QueueingMethod = 9 }},
		{"RenewInterval", func(c *waitingroom.Config) { c.RenewInterval = time.Hour }},
		{"RefreshInterval", func(c *waitingroom.Config) { c.RefreshInterval = time.Hour }},
		{"QueueHold", func(c *waitingroom.Config) { c.QueueHold = 10 * time.Second }},
		{"ArrivalGrace", func(c *waitingroom.Config) { c.ArrivalGrace = time.Hour }},
		{"QueueingStatusCode", func(c *waitingroom.Config) { c.QueueingStatusCode = 500 }},
		{"TypicalSession", func(c *waitingroom.Config) { c.TypicalSession = -time.Second }},
		{"MaxSessionDuration", func(c *waitingroom.Config) { c.MaxSessionDuration = time.Minute }},
		{`Events["a"].SessionDuration`, func(c *waitingroom.Config) {
			c.MaxSessionDuration = 10 * time.Minute
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Hour), SessionDuration: 20 * time.Minute}}
		}},
		{`Events[0].Name`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Start: start, End: start.Add(time.Hour)}}
		}},
		{`Events["a"].End`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Second)}}
		}},
		{`Events["a"].NewUsersPerMinute`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Hour), TotalActiveUsers: 1, NewUsersPerMinute: 2}}
		}},
		{`Events["b"].PrequeueStart`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{
				{Name: "a", Start: start, End: start.Add(time.Hour)},
				{Name: "b", PrequeueStart: start.Add(30 * time.Minute), Start: start.Add(2 * time.Hour), End: start.Add(3 * time.Hour)},
			}
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := ok
			tc.f(&c)
			for name, err := range map[string]error{
				"Validate": c.Validate(),
				"New":      func() error { _, err := waitingroom.New("r", memory.New(), c); return err }(),
			} {
				var ce *waitingroom.ConfigError
				if !errors.As(err, &ce) || !errors.Is(err, waitingroom.ErrConfig) || ce.Field != tc.field {
					t.Errorf("%s: %v (%#v), want a ConfigError for %s", name, err, ce, tc.field)
				}
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}

// A typed nil store (a constructor's error dropped) is refused at New, not at the first
// request; the room ID error is the stores' own.
func TestNewRefusesANilStore(t *testing.T) {
	cfg := waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
	var rs *redis.Store
	for name, s := range map[string]store.Store{"nil": nil, "typed nil": rs} {
		if _, err := waitingroom.New("r", s, cfg); !errors.Is(err, waitingroom.ErrConfig) {
			t.Errorf("%s store: %v, want ErrConfig", name, err)
		}
	}
	if _, err := waitingroom.New("a b", memory.New(), cfg); !errors.Is(err, store.ErrInvalidRoom) || !errors.Is(err, waitingroom.ErrInvalidRoom) {
		t.Errorf("invalid ID: %v, want the one ErrInvalidRoom", err)
	}
}

// The settings Config returns, defaults filled in, are valid settings that mean the same:
// an event with a shorter session than the default RenewInterval included.
func TestConfigRoundTrip(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, Events: []waitingroom.Event{
		{Name: "short", Start: start, End: start.Add(time.Hour), SessionDuration: 30 * time.Second},
	}}
	r, err := waitingroom.New("rt", memory.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	back := r.Config()
	if err := back.Validate(); err != nil {
		t.Fatalf("Config() does not validate again: %v", err)
	}
	doc, err := waitingroom.EncodeConfig(back)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := waitingroom.DecodeConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := waitingroom.New("rt", memory.New(), dec)
	if err != nil {
		t.Fatalf("the decoded settings: %v", err)
	}
	if !reflect.DeepEqual(r2.Events(), r.Events()) || r2.Config().RenewInterval != back.RenewInterval {
		t.Errorf("the settings given back differ: %+v, want %+v", r2.Config(), back)
	}
}

func TestPassthroughEventInPassthroughRoom(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	pass := waitingroom.Passthrough
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, QueueingMethod: waitingroom.Passthrough,
		Events: []waitingroom.Event{{Name: "open", Start: start, End: start.Add(time.Hour), QueueingMethod: &pass}}}
	var ce *waitingroom.ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != `Events["open"].QueueingMethod` {
		t.Fatalf("Validate: %v, want a ConfigError on the event's QueueingMethod", err)
	}
	fifo := waitingroom.FIFO
	cfg.Events[0].QueueingMethod = &fifo
	if err := cfg.Validate(); err != nil {
		t.Errorf("a FIFO event in a passthrough room: %v", err)
	}
}
