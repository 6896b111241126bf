package redis

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// What room.lua shares with Go is written here once, and the script's first lines are made
// from it (luaHeader): the model's constants, the layout of the one argument every call
// passes, and the layouts of the replies. So the two cannot disagree.

// Operations, as the argument's first field names them.
const (
	opJoin = iota + 1
	opPoll
	opRenew
	opRelease
	opStats
	opRevive
)

// argFields is the argument's layout: little-endian int64s, none negative. A Ref's number
// travels plus one (0: no ticket), Now as 0 when the script reads the server's TIME.
// "flags" holds the offer's Overwrite (bit 0, the field's whole meaning before bit 1 came)
// and CloseWhenSoldOut (bit 1). The field is the caller's in every release: a stored
// settings' limits ("lim") carry it too, but settle copies them from capacity to
// recoveryMs and the events, so a release before bit 1 never reads it there, and reads
// queueAll as the 0 or 1 it always was. (Carried in queueAll, a room with both set read
// as not queueing all to such a release.)
var argFields = []string{
	"op", "now", "capacity", "perMinute", "sessionMs", "renewal", "holdMs", "graceMs",
	"refreshMs", "method", "queueAll", "recoveryMs", "lastEpoch", "refNumber", "refEpoch",
	"settings", "flags", "events",
}

// eventFields is the layout of each event, after the argument's fields.
var eventFields = []string{
	"prequeue", "start", "end", "shuffle", "seed", "capacity", "perMinute", "sessionMs",
	"renewal", "method",
}

// The replies: little-endian int64s in one string, in these orders.
var (
	resultFields  = []string{"ticket", "epoch", "joined", "requeued", "admitted", "expires", "ahead", "nextPoll", "now", "active", "waiting", "admissions", "granted", "window", "slots", "soldOut"}
	statsFields   = []string{"now", "active", "waiting", "admissions", "granted", "window", "slots"}
	renewalFields = []string{"now", "active", "expires"}
)

// luaHeader is the Lua that defines the shared constants and layouts, prepended to
// room.lua.
var luaHeader = func() string {
	var b strings.Builder
	b.WriteString("-- Made by layout.go from Go's constants and layouts: do not edit.\n")
	// Each layout is one table of field positions (A.OP == 1, ...): a chunk may have at most
	// 200 locals, and room.lua needs most of them.
	def := func(table string, names []string, first int) {
		fields := make([]string, len(names))
		for i, n := range names {
			fields[i] = fmt.Sprintf("%s = %d", strings.ToUpper(n), first+i)
		}
		fmt.Fprintf(&b, "local %s = {%s}\n", table, strings.Join(fields, ", "))
	}
	def("A", argFields, 1)
	fmt.Fprintf(&b, "local A_COUNT, E_COUNT = %d, %d\n", len(argFields), len(eventFields))
	def("E", eventFields, 0)
	def("R", resultFields, 1)
	def("S", statsFields, 1)
	def("N", renewalFields, 1)
	def("OP", []string{"join", "poll", "renew", "release", "stats", "revive"}, opJoin)
	fmt.Fprintf(&b, "local FIFO, RANDOM, PASSTHROUGH, REJECT = %d, %d, %d, %d\n",
		admission.FIFO, admission.Random, admission.Passthrough, admission.Reject)
	fmt.Fprintf(&b, "local BUCKET, TAKEN, MAXSCAN, WINDOW, MINGAP, PICK_P = %d, %d, %d, %d, %d, %d\n",
		admission.LiveBucket.Milliseconds(), admission.Taken, admission.MaxScan,
		admission.RateWindow.Milliseconds(), admission.MinPollGap.Milliseconds(), pickP)
	// Tops (room.lua's T): a table, for a chunk may have at most 200 locals.
	fmt.Fprintf(&b, "local T = {BLOCK = %d, MAXSKIP = %d}\n", admission.Block, admission.MaxSkip)
	fmt.Fprintf(&b, "local FEISTEL_ROUNDS = %d\n", feistelRounds)
	fmt.Fprintf(&b, "local SETTINGS_TTL, MAX_CHANGES = %d, %d\n", store.SettingsTTL.Milliseconds(), store.MaxChanges)
	// The header "c": 14 int64s, the last the stored settings' version plus one (control.lua
	// writes it in place).
	fmt.Fprintf(&b, "local COLD_LEN, SV_FMT = %d, '<i8'\n", coldLen)
	// Slot counts (room.lua's SL, a table for the same reason): the flag bits and "none".
	fmt.Fprintf(&b, "local SL = {OVERWRITE = %d, CLOSE = %d, NONE = %d}\n", flagOverwrite, flagCloseWhenSoldOut, admission.NotCounted)
	return b.String()
}()

// coldLen is the length of the room header's field "c"; its last 8 bytes are the version
// of the stored settings the room last saw, plus one (0: unknown).
const coldLen = 14 * 8

// pickP and feistelRounds are admission's (unexported there); a test holds them to
// admission.Pick and admission.Permute.
const (
	pickP         = 67108859
	feistelRounds = 10
)

// encodeArgs writes one operation's argument.
func encodeArgs(op int, now int64, l admission.Limits, ref store.Ref) []byte {
	b := make([]byte, 0, 8*(len(argFields)+len(eventFields)*len(l.Events)+2))
	put := func(v int64) { b = binary.LittleEndian.AppendUint64(b, uint64(max(v, 0))) }
	ms := func(d time.Duration) { put(d.Milliseconds()) }
	flag := func(v bool) {
		if v {
			put(1)
		} else {
			put(0)
		}
	}
	refNumber := int64(0)
	if ref.Number >= 0 {
		refNumber = ref.Number + 1
	}
	put(int64(op))
	put(now)
	put(l.Capacity)
	put(l.PerMinute)
	ms(l.Session)
	flag(l.Renewal)
	ms(l.Hold)
	ms(l.Grace)
	ms(l.Refresh)
	put(int64(l.Method))
	flag(l.QueueAll)
	ms(l.Recovery)
	put(l.LastEpoch)
	put(refNumber)
	put(ref.Epoch)
	put(l.Offer.Version)
	put(flags(l))
	put(int64(len(l.Events)))
	for _, e := range l.Events {
		put(e.Prequeue)
		put(e.Start)
		put(e.End)
		flag(e.Shuffle)
		put(e.Seed)
		put(e.Capacity)
		put(e.PerMinute)
		ms(e.Session)
		flag(e.Renewal)
		put(int64(e.Method))
	}
	// A renewal's own fields after the events, read before settle (never stored: limits
	// of a release from before them would not read).
	if op == opRenew {
		put(l.Admitted)
		flag(l.Recount)
	}
	return b
}

// Bits of the argument's field "flags".
const (
	flagOverwrite        = 1
	flagCloseWhenSoldOut = 2
)

func flags(l admission.Limits) int64 {
	var f int64
	if l.Offer.Overwrite {
		f |= flagOverwrite
	}
	if l.CloseWhenSoldOut {
		f |= flagCloseWhenSoldOut
	}
	return f
}

// decodeReply reads a reply's n int64s, and the stored settings that follow them when the
// caller's version differed (admission.Settle's stale): their version, the refresh interval
// (what a Random poll's spread needs of the limits that applied), then their document.
func decodeReply(s string, n int) ([]int64, *admission.Settings, error) {
	if len(s) < 8*n || len(s) > 8*n && len(s) < 8*n+16 {
		return nil, nil, fmt.Errorf("store/redis: a reply of %d bytes", len(s))
	}
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64([]byte(s[8*i : 8*i+8])))
	}
	var stale *admission.Settings
	if rest := s[8*n:]; rest != "" {
		stale = &admission.Settings{
			Version: int64(binary.LittleEndian.Uint64([]byte(rest[:8]))),
			Limits:  admission.Limits{Refresh: time.Duration(binary.LittleEndian.Uint64([]byte(rest[8:16]))) * time.Millisecond},
			Doc:     []byte(rest[16:]),
		}
	}
	return v, stale, nil
}

// A negative nextPoll is Random's spread, which the script leaves to its caller:
// admission.RandomPoll of the room's epoch (negated there), the ticket and now, by the
// limits' refresh.
func decodeResult(v []int64, refresh time.Duration) (store.Result, error) {
	if len(v) != len(resultFields) {
		return store.Result{}, errReply(v)
	}
	at := func(name string) int64 { return v[index(resultFields, name)] }
	r := store.Result{
		Ticket:     at("ticket"),
		Epoch:      at("epoch"),
		Requeued:   at("requeued") == 1,
		Admitted:   at("admitted") == 1,
		UsersAhead: at("ahead"),
		SoldOut:    at("soldOut") == 1,
		Stats: store.Stats{
			Now: time.UnixMilli(at("now")), Active: at("active"), Waiting: at("waiting"),
			Admissions: at("admissions"), Granted: at("granted"), Window: at("window"), Slots: at("slots"),
		},
	}
	if j := at("joined"); j != 0 {
		r.Joined = time.UnixMilli(j)
	}
	switch {
	case r.SoldOut:
	case r.Admitted:
		r.Expires = time.UnixMilli(at("expires"))
	default:
		next := at("nextPoll")
		if next < 0 {
			next = admission.RandomPoll(-next, r.Ticket, at("now"), refresh)
		}
		r.NextPoll = time.UnixMilli(next)
	}
	return r, nil
}

func decodeStats(v []int64) (store.Stats, error) {
	if len(v) != len(statsFields) {
		return store.Stats{}, errReply(v)
	}
	at := func(name string) int64 { return v[index(statsFields, name)] }
	return store.Stats{
		Now: time.UnixMilli(at("now")), Active: at("active"), Waiting: at("waiting"),
		Admissions: at("admissions"), Granted: at("granted"), Window: at("window"), Slots: at("slots"),
	}, nil
}

func decodeRenewal(v []int64) (store.Renewal, error) {
	if len(v) != len(renewalFields) {
		return store.Renewal{}, errReply(v)
	}
	at := func(name string) int64 { return v[index(renewalFields, name)] }
	r := store.Renewal{Now: time.UnixMilli(at("now")), Active: at("active") == 1}
	if r.Active {
		r.Expires = time.UnixMilli(at("expires"))
	}
	return r, nil
}

func index(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic("store/redis: no field " + name)
}

// decodeLimits reads the limits of an argument encodeArgs wrote (a room's stored "lim").
func decodeLimits(b []byte) (admission.Limits, error) {
	n := len(argFields)
	at := func(i int) int64 { return int64(binary.LittleEndian.Uint64(b[8*i:])) }
	if len(b) < 8*n {
		return admission.Limits{}, fmt.Errorf("store/redis: stored limits of %d bytes", len(b))
	}
	field := func(name string) int64 { return at(index(argFields, name)) }
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	l := admission.Limits{
		Capacity:  field("capacity"),
		PerMinute: field("perMinute"),
		Session:   ms(field("sessionMs")),
		Renewal:   field("renewal") == 1,
		Hold:      ms(field("holdMs")),
		Grace:     ms(field("graceMs")),
		Refresh:   ms(field("refreshMs")),
		Method:    admission.Method(field("method")),
		QueueAll:  field("queueAll") == 1,
		Recovery:  ms(field("recoveryMs")),

		CloseWhenSoldOut: field("flags")&flagCloseWhenSoldOut != 0,
	}
	events := field("events")
	// After the events, two more fields (a renewed pass's admission time and Recount) limits
	// do not use; stored limits from before them have none, or the first.
	if rest := int64(len(b)-8*n) - events*8*int64(len(eventFields)); rest != 0 && rest != 8 && rest != 16 {
		return admission.Limits{}, fmt.Errorf("store/redis: stored limits of %d bytes for %d events", len(b), events)
	}
	for i := range int(events) {
		f := func(name string) int64 { return at(n + i*len(eventFields) + index(eventFields, name)) }
		l.Events = append(l.Events, admission.Event{
			Prequeue: f("prequeue"), Start: f("start"), End: f("end"), Shuffle: f("shuffle") == 1,
			Seed: f("seed"), Capacity: f("capacity"), PerMinute: f("perMinute"),
			Session: ms(f("sessionMs")), Renewal: f("renewal") == 1, Method: admission.Method(f("method")),
		})
	}
	return l, nil
}
