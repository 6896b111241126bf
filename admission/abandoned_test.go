package admission

import (
	"fmt"
	"testing"
	"time"
)

// abandonedLimits: one slot, a generous rate, and the suite's hold.
func abandonedLimits(m Method) Limits {
	return Limits{
		Capacity: 1, PerMinute: 1000, Session: time.Hour, Renewal: true,
		Hold: time.Minute, Grace: 40 * time.Second, Refresh: 20 * time.Second, Method: m,
	}
}

// TestAbandonedRun is issue 13's item 4: a lone visitor behind a run of abandoned places
// gets a free slot at its next poll, however long the run, and no operation pays for the
// run beyond a constant.
func TestAbandonedRun(t *testing.T) {
	for _, m := range []Method{FIFO, Random} {
		for _, n := range []int{0, 20_000, 1_000_000} {
			t.Run(fmt.Sprintf("%v/%d", m, n), func(t *testing.T) {
				l := abandonedLimits(m)
				now := int64(1_700_000_000_000)
				r := Open(now, new(MemQueue), l)
				in := r.Join(now, l) // holds the one slot
				if !in.Admitted {
					t.Fatal("the first visitor was not admitted")
				}
				for range n {
					r.Join(now, l) // joins, never comes back
				}
				v := r.Join(now, l)
				if v.Admitted {
					t.Fatal("admitted into a full room")
				}
				// v polls every refresh; the others' places lapse; then the slot frees.
				for range 6 {
					now += l.Refresh.Milliseconds()
					if p := r.Poll(Ref{v.Ticket, v.Epoch}, now, l); p.Admitted || p.Requeued {
						t.Fatalf("while the room is full: %+v", p)
					}
				}
				r.Release(Ref{in.Ticket, in.Epoch}, now)
				now += l.Refresh.Milliseconds()
				p := r.Poll(Ref{v.Ticket, v.Epoch}, now, l)
				if !p.Admitted {
					t.Errorf("the lone visitor behind %d abandoned places was not admitted at its first poll after the slot freed (users ahead %d)", n, p.UsersAhead)
				}
			})
		}
	}
}

// BenchmarkAbandonedRun times the one join that passes a run of n abandoned places to
// admit the lone live visitor behind it: the operation a run costs most. Its setup is large;
// run it a few times: go test -bench AbandonedRun -benchtime 5x ./admission/
func BenchmarkAbandonedRun(b *testing.B) {
	for _, n := range []int{0, 20_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l := abandonedLimits(FIFO)
			for range b.N {
				b.StopTimer()
				now := int64(1_700_000_000_000)
				r := Open(now, new(MemQueue), l)
				in := r.Join(now, l)
				for range n {
					r.Join(now, l)
				}
				now += (l.Hold + 2*LiveBucket).Milliseconds()
				r.Release(Ref{in.Ticket, in.Epoch}, now)
				b.StartTimer()
				// The join passes the run (in a full room it would stop at the visitor).
				if p := r.Join(now, l); !p.Admitted {
					b.Fatal("not admitted")
				}
			}
		})
	}
}
