package admin

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// The overview: every room, one row each, sorted.

// overview answers GET /dashboard/.
func (d *dashboard) overview(w http.ResponseWriter, r *http.Request, cred *credential) {
	s := parseSort(r.URL.Query())
	rows := d.rows(r.Context(), s)
	d.render(w, r, http.StatusOK, "rooms", cred, "Rooms", overviewView{
		Rows: rows, Sort: s, Caption: s.caption(), Columns: s.columns(), Live: "/dashboard/rooms.json" + s.query(),
		Self: dashboardRoot + s.query(), At: d.at(rows), Total: len(rows), Waiting: sumWaiting(rows),
	})
}

// overviewJSON answers GET /dashboard/rooms.json.
func (d *dashboard) overviewJSON(w http.ResponseWriter, r *http.Request, cred *credential) {
	rows := d.rows(r.Context(), parseSort(r.URL.Query()))
	writeJSON(w, http.StatusOK, struct {
		At      string    `json:"at"`
		Total   int       `json:"total"`
		Waiting string    `json:"waiting"`
		Rows    []roomRow `json:"rows"`
	}{d.at(rows), len(rows), thousands(sumWaiting(rows)), rows})
}

// rows are the registry's rooms with their counters, sorted by s.
func (d *dashboard) rows(ctx context.Context, s sortOrder) []roomRow {
	d.h.refresh(ctx)
	rs := d.h.reg.Rooms()
	snaps := d.h.snapshots(ctx, rs)
	d.h.prune(rs)
	out := make([]roomRow, len(rs))
	for i, rm := range rs {
		out[i] = newRow(rm, snaps[i])
	}
	s.sort(out)
	return out
}

// at is the store's time of the freshest counters among rows, for "updated at".
func (d *dashboard) at(rows []roomRow) string {
	var t time.Time
	for _, r := range rows {
		if r.now.After(t) {
			t = r.now
		}
	}
	if t.IsZero() {
		t = d.now()
	}
	return t.UTC().Format("15:04:05") + " UTC"
}

func sumWaiting(rows []roomRow) int64 {
	var n int64
	for _, r := range rows {
		n += r.waiting
	}
	return n
}

// roomRow is a room's live figures, formatted for the pages; the JSON carries the same
// strings for the script, which only copies them into the cells named by data-k.
type roomRow struct {
	ID    string            `json:"id"`
	Href  string            `json:"href"`
	State string            `json:"state"` // open, queue-all, sold-out, suspended
	Cells map[string]string `json:"cells"`
	// The numbers to sort by.
	now                                     time.Time // the store's, when the counters were read
	active, capacity, waiting, window, rate int64
	slots                                   int64 // left; -1: not counted, or not read
	longest                                 time.Duration
	estimate                                time.Duration // its median; -1: unknown
	estimateReason                          string        // why it is unknown
	statsFailed                             bool
	version                                 int64
	stateText                               string
	cfg                                     waitingroom.Config // the settings of version
}

func newRow(rm *waitingroom.Room, st statsResult) roomRow {
	v, cfg := view(rm)
	r := roomRow{ID: rm.ID(), Href: "/dashboard/rooms/" + rm.ID(), version: v, cfg: cfg,
		capacity: int64(cfg.TotalActiveUsers), rate: int64(cfg.NewUsersPerMinute), estimate: -1, slots: -1}
	c := map[string]string{"version": strconv.FormatInt(v, 10),
		"capacity": thousands(r.capacity), "rate": thousands(r.rate)}
	r.Cells = c
	if st.err != nil {
		r.statsFailed, r.estimateReason = true, "the store could not be reached"
		c["active"], c["waiting"], c["admitted"] = "–", "–", "–"
		c["longest"], c["estimate"], c["slots"], c["slots_note"] = "–", "–", "–", ""
		r.State, r.stateText = stateOf(cfg, -1)
		c["state"] = r.stateText
		return r
	}
	s := st.snap
	r.now, r.slots = s.Now, max(s.Slots, -1)
	r.State, r.stateText = stateOf(cfg, r.slots)
	c["state"] = r.stateText
	c["slots"], c["slots_note"] = slotsText(cfg, r.slots)
	r.active, r.waiting, r.window, r.longest = s.Active, s.Waiting, s.Window, s.LongestWait
	c["active"], c["waiting"], c["admitted"] = thousands(s.Active), thousands(s.Waiting), thousands(s.Window)
	c["longest"] = "–"
	if s.Waiting > 0 {
		c["longest"] = clock(s.LongestWait)
	}
	switch w := s.Wait; {
	case !w.Known:
		c["estimate"], r.estimateReason = "unknown", w.Reason
	case w.P75 <= 0:
		r.estimate, c["estimate"] = 0, "none"
	default:
		r.estimate = w.P50
		lo, hi := estimate.Minutes(w.P25), estimate.Minutes(w.P75)
		if lo == hi {
			c["estimate"] = fmt.Sprintf("%d min", hi)
		} else {
			c["estimate"] = fmt.Sprintf("%d–%d min", lo, hi)
		}
	}
	return r
}

// stateOf is a room's state, as the pages' data-state and in words, with slots left
// (-1: not counted, or not known). Sold out comes before queue-all, which it overrides for
// newcomers (they get no place at all); suspended before both, as the room then steps aside.
func stateOf(cfg waitingroom.Config, slots int64) (state, text string) {
	switch {
	case cfg.Suspended:
		return "suspended", "Suspended"
	case cfg.CloseWhenSoldOut && slots == 0:
		return "sold-out", "Sold out"
	case cfg.QueueAll:
		return "queue-all", "Queue all"
	}
	return "open", "Open"
}

// slotsText is the count of slots left as the pages write it, and a note on what it does.
func slotsText(cfg waitingroom.Config, slots int64) (count, note string) {
	switch {
	case slots < 0:
		return "–", "not counted"
	case slots > 0:
		return thousands(slots), ""
	case cfg.CloseWhenSoldOut:
		return "0", "closed to newcomers"
	}
	return "0", "newcomers still queue: closing when sold out is off"
}

// sortOrder is the overview's order: a column and a direction.
type sortOrder struct {
	key  string // "" is the default: busiest first (most waiting, then most active)
	desc bool
}

// sortKeys are the overview's columns that sort, and their first direction.
var sortKeys = []struct {
	key, label string
	desc       bool
	less       func(a, b *roomRow) int
}{
	{"id", "Room", false, func(a, b *roomRow) int { return strings.Compare(a.ID, b.ID) }},
	{"state", "Status", false, func(a, b *roomRow) int { return strings.Compare(a.State, b.State) }},
	{"active", "Active / capacity", true, func(a, b *roomRow) int { return cmp.Compare(a.active, b.active) }},
	{"waiting", "Waiting", true, func(a, b *roomRow) int { return cmp.Compare(a.waiting, b.waiting) }},
	{"admitted", "Admitted last min / rate", true, func(a, b *roomRow) int { return cmp.Compare(a.window, b.window) }},
	{"longest", "Longest wait", true, func(a, b *roomRow) int { return cmp.Compare(int64(a.longest), int64(b.longest)) }},
	{"estimate", "New arrival waits", true, func(a, b *roomRow) int { return cmp.Compare(int64(a.estimate), int64(b.estimate)) }},
	{"slots", "Slots left", false, func(a, b *roomRow) int { return cmp.Compare(a.slots, b.slots) }},
}

func parseSort(q url.Values) sortOrder {
	k := q.Get("sort")
	for _, s := range sortKeys {
		if s.key == k {
			desc := s.desc
			switch q.Get("order") {
			case "asc":
				desc = false
			case "desc":
				desc = true
			}
			return sortOrder{key: k, desc: desc}
		}
	}
	return sortOrder{}
}

// sort sorts rows by s, then by ID. Rooms whose counters could not be read, unknown
// waits when sorting by the wait, and slots not counted when sorting by slots, go last
// either way.
func (s sortOrder) sort(rows []roomRow) {
	slices.SortStableFunc(rows, func(a, b roomRow) int {
		if a.statsFailed != b.statsFailed && s.key != "id" && s.key != "state" {
			if a.statsFailed {
				return 1
			}
			return -1
		}
		var c int
		switch s.key {
		case "":
			if c = cmp.Compare(b.waiting, a.waiting); c == 0 {
				c = cmp.Compare(b.active, a.active)
			}
		case "estimate", "slots":
			an, bn := a.estimate < 0, b.estimate < 0
			if s.key == "slots" {
				an, bn = a.slots < 0, b.slots < 0
			}
			if an != bn {
				if an {
					return 1
				}
				return -1
			}
			fallthrough
		default:
			for _, k := range sortKeys {
				if k.key == s.key {
					c = k.less(&a, &b)
				}
			}
			if s.desc {
				c = -c
			}
		}
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		return c
	})
}

// query is s as the overview's query string ("" for the default).
func (s sortOrder) query() string {
	if s.key == "" {
		return ""
	}
	q := "?sort=" + s.key
	for _, k := range sortKeys {
		if k.key == s.key && k.desc != s.desc {
			if s.desc {
				q += "&order=desc"
			} else {
				q += "&order=asc"
			}
		}
	}
	return q
}

// column is a header of the overview: its link sorts by it, or the other way round when
// it is the column sorted by.
type column struct {
	Key, Label, Href string
	Sort             string // aria-sort: "ascending", "descending" or ""
}

func (s sortOrder) columns() []column {
	out := make([]column, len(sortKeys))
	for i, k := range sortKeys {
		next := sortOrder{key: k.key, desc: k.desc}
		c := column{Key: k.key, Label: k.label}
		if s.key == k.key {
			next.desc = !s.desc
			c.Sort = "ascending"
			if s.desc {
				c.Sort = "descending"
			}
		}
		c.Href = dashboardRoot + next.query()
		out[i] = c
	}
	return out
}

// overviewView is the rooms page.
type overviewView struct {
	Rows     []roomRow
	Blank    roomRow // the row the script copies for a new room
	Sort     sortOrder
	Caption  string
	Columns  []column
	Live, At string
	Self     string // this page, to reload
	Total    int
	Waiting  int64
}

// caption says how the overview is sorted.
func (s sortOrder) caption() string {
	if s.key == "" {
		return "All rooms, busiest first: most waiting, then most active"
	}
	for _, k := range sortKeys {
		if k.key == s.key {
			dir := "ascending"
			if s.desc {
				dir = "descending"
			}
			return "All rooms, by " + strings.ToLower(k.label) + ", " + dir
		}
	}
	return "All rooms"
}

// Default reports whether the overview is in its default order.
func (s sortOrder) Default() bool { return s.key == "" }
