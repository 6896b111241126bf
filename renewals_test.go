package waitingroom

import (
	"testing"
	"time"
)

func TestRenewalsShareOneCall(t *testing.T) {
	var rs renewals
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	k := renewKey{1, 7}
	c, lead := rs.start(k, now)
	if !lead {
		t.Fatal("the first renewal of a session must lead")
	}
	// In flight: the others wait for it, however late their clock.
	if d, lead := rs.start(k, now.Add(time.Hour)); lead || d != c {
		t.Fatal("a renewal in flight was not shared")
	}
	if _, lead := rs.start(renewKey{1, 8}, now); !lead {
		t.Fatal("another session shared this one's renewal")
	}
	rs.finish(c, now.Add(time.Minute))
	select {
	case <-c.done:
	default:
		t.Fatal("finish did not release the waiters")
	}
	if d, lead := rs.start(k, now.Add(59*time.Second)); lead || d != c {
		t.Fatal("the answer did not stand until its time")
	}
	if d, lead := rs.start(k, now.Add(time.Minute)); !lead || d == c {
		t.Fatal("the answer stood past its time")
	}
	rs.forget(k)
	if _, lead := rs.start(k, now); !lead {
		t.Fatal("a forgotten session's renewal was shared")
	}
}

func TestRenewalsBounded(t *testing.T) {
	var rs renewals
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for i := range maxRenewals + 100 {
		c, _ := rs.start(renewKey{1, int64(i)}, now)
		rs.finish(c, now.Add(time.Minute))
	}
	if len(rs.m) > maxRenewals {
		t.Fatalf("%d answers kept, at most %d", len(rs.m), maxRenewals)
	}
	// Once they have lapsed, a sweep makes room again.
	later := now.Add(2 * time.Minute)
	c, _ := rs.start(renewKey{2, 1}, later)
	if rs.m[renewKey{2, 1}] != c || len(rs.m) != 1 {
		t.Fatalf("after the sweep: %d answers kept, the new one kept: %v", len(rs.m), rs.m[renewKey{2, 1}] == c)
	}
}
