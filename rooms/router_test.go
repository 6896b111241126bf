package rooms

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// testRouter is the table the matching tests share.
func testRouter(t testing.TB) *Router[string] {
	t.Helper()
	rt := NewRouter[string]()
	for _, s := range []struct {
		r Route
		v string
	}{
		{Route{"", "/"}, "root"},
		{Route{"", "/city-001/"}, "c1"},
		{Route{"", "/city-001/form"}, "c1form"},
		{Route{"", "/city-0012"}, "c12"},
		{Route{"shop.example.com", "/sale"}, "shop-sale"},
		{Route{"Admin.Example.com", "/"}, "admin"},
		{Route{"example.com", "/city-001/form/step2"}, "ex-step2"},
		{Route{"[::1]", "/ipv6"}, "v6"},
		{Route{"10.0.0.1", "/ipv4"}, "v4"},
	} {
		if err := rt.Set(s.r, s.v); err != nil {
			t.Fatalf("Set(%+v): %v", s.r, err)
		}
	}
	return rt
}

func TestMatch(t *testing.T) {
	rt := testRouter(t)
	for _, tc := range []struct {
		name, host, path string
		want             string
		wantRoute        Route
	}{
		{"root", "x.test", "/", "root", Route{"", "/"}},
		{"empty path", "x.test", "", "root", Route{"", "/"}},
		{"unknown path", "x.test", "/nope/deeper", "root", Route{"", "/"}},
		{"prefix itself", "", "/city-001", "c1", Route{"", "/city-001"}},
		{"prefix with slash", "", "/city-001/", "c1", Route{"", "/city-001"}},
		{"under prefix", "", "/city-001/other", "c1", Route{"", "/city-001"}},
		{"longest prefix", "", "/city-001/form", "c1form", Route{"", "/city-001/form"}},
		{"longest prefix deeper", "", "/city-001/form/step2", "c1form", Route{"", "/city-001/form"}},
		{"segment boundary of longer", "", "/city-001/formx", "c1", Route{"", "/city-001"}},
		{"segment boundary /city-0012", "", "/city-0012", "c12", Route{"", "/city-0012"}},
		{"segment boundary /city-0012/a", "", "/city-0012/a", "c12", Route{"", "/city-0012"}},
		{"segment boundary /city-00123", "", "/city-00123", "root", Route{"", "/"}},
		{"segment boundary /city-00", "", "/city-00", "root", Route{"", "/"}},
		{"empty segments", "", "//city-001//form/", "c1form", Route{"", "/city-001/form"}},
		{"dot dot up", "", "/public/../city-001/form", "c1form", Route{"", "/city-001/form"}},
		{"dot dot leaves room", "", "/city-001/form/..", "c1", Route{"", "/city-001"}},
		{"dot dot above root", "", "/../../city-001", "c1", Route{"", "/city-001"}},
		{"dot", "", "/city-001/./form", "c1form", Route{"", "/city-001/form"}},
		{"dots in names", "", "/city-001/form.v2/..x", "c1", Route{"", "/city-001"}},
		{"percent not decoded", "", "/city-001%2Fform", "root", Route{"", "/"}},
		{"host route", "shop.example.com", "/sale/item", "shop-sale", Route{"shop.example.com", "/sale"}},
		{"host case and port", "Shop.Example.COM:8080", "/sale", "shop-sale", Route{"shop.example.com", "/sale"}},
		{"host trailing dot", "shop.example.com.:443", "/sale", "shop-sale", Route{"shop.example.com", "/sale"}},
		{"host without match falls to any-host", "shop.example.com", "/city-001/form", "c1form", Route{"", "/city-001/form"}},
		{"host beats longer any-host prefix", "ADMIN.example.com", "/city-001/form/x", "admin", Route{"admin.example.com", "/"}},
		{"host deeper than any-host", "example.com", "/city-001/form/step2/x", "ex-step2", Route{"example.com", "/city-001/form/step2"}},
		{"host shallower falls to any-host", "example.com", "/city-001/form/step3", "c1form", Route{"", "/city-001/form"}},
		{"other host", "other.example.com", "/sale", "root", Route{"", "/"}},
		{"subdomain is another host", "www.shop.example.com", "/sale", "root", Route{"", "/"}},
		{"ipv6 with port", "[::1]:8080", "/ipv6/a", "v6", Route{"::1", "/ipv6"}},
		{"ipv6 brackets", "[::1]", "/ipv6", "v6", Route{"::1", "/ipv6"}},
		{"ipv6 bare", "::1", "/ipv6", "v6", Route{"::1", "/ipv6"}},
		{"ipv6 other path", "[::1]:8080", "/x", "root", Route{"", "/"}},
		{"ipv4 with port", "10.0.0.1:80", "/ipv4", "v4", Route{"10.0.0.1", "/ipv4"}},
		{"empty host", "", "/sale", "root", Route{"", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, route, ok := rt.Match(tc.host, tc.path)
			if !ok || v != tc.want || route != tc.wantRoute {
				t.Errorf("Match(%q, %q) = %q, %+v, %v; want %q, %+v, true",
					tc.host, tc.path, v, route, ok, tc.want, tc.wantRoute)
			}
		})
	}
}

func TestMatchWithoutRootRoute(t *testing.T) {
	rt := NewRouter[int]()
	if err := rt.Set(Route{"a.test", "/x"}, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, host, path string }{
		{"empty router path", "b.test", "/x"},
		{"host route other path", "a.test", "/y"},
		{"segment boundary", "a.test", "/xy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, route, ok := rt.Match(tc.host, tc.path); ok || v != 0 || route != (Route{}) {
				t.Errorf("Match(%q, %q) = %v, %+v, %v; want no match", tc.host, tc.path, v, route, ok)
			}
		})
	}
}

func TestLookupFallback(t *testing.T) {
	rt := NewRouter[string]()
	if err := rt.Set(Route{"", "/city-001"}, "c1"); err != nil {
		t.Fatal(err)
	}
	req := func(host, target string) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = host
		return r
	}
	for _, tc := range []struct {
		name     string
		fallback *string // nil: none
		r        *http.Request
		want     string
		wantOK   bool
	}{
		{"match, no fallback", nil, req("a.test", "/city-001/form?x=1"), "c1", true},
		{"miss, no fallback", nil, req("a.test", "/other"), "", false},
		{"match beats fallback", ptr("fb"), req("a.test", "/city-001"), "c1", true},
		{"miss, fallback", ptr("fb"), req("a.test", "/other"), "fb", true},
		{"encoded path is decoded by net/http", nil, req("a.test", "/city%2D001/x"), "c1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fallback != nil {
				rt.SetFallback(*tc.fallback)
			} else {
				rt.ClearFallback()
			}
			v, ok := rt.Lookup(tc.r)
			if v != tc.want || ok != tc.wantOK {
				t.Errorf("Lookup(%s %s) = %q, %v; want %q, %v", tc.r.Host, tc.r.URL, v, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDelete(t *testing.T) {
	rt := testRouter(t)
	n := rt.Len()
	for _, tc := range []struct {
		name      string
		route     Route
		want      bool
		path      string // then matched with host example.com
		wantMatch string
	}{
		{"leaf", Route{"", "/city-001/form"}, true, "/city-001/form", "c1"},
		{"again", Route{"", "/city-001/form"}, false, "/city-001/form", "c1"},
		{"missing", Route{"", "/nope"}, false, "/nope", "root"},
		{"inner node without value", Route{"", "/city-001/form/step2"}, false, "/city-001/form/step2/x", "ex-step2"},
		{"other spelling", Route{"", "/city-001"}, true, "/city-001", "root"},
		{"host route in any case", Route{"EXAMPLE.com.", "/city-001/form/step2/"}, true, "/city-001/form/step2", "root"},
		{"invalid route", Route{"", "nope"}, false, "/", "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rt.Delete(tc.route); got != tc.want {
				t.Fatalf("Delete(%+v) = %v; want %v", tc.route, got, tc.want)
			}
			if tc.want {
				n--
			}
			if rt.Len() != n {
				t.Errorf("Len() = %d; want %d", rt.Len(), n)
			}
			if v, _, _ := rt.Match("example.com", tc.path); v != tc.wantMatch {
				t.Errorf("Match(%q) = %q; want %q", tc.path, v, tc.wantMatch)
			}
		})
	}

	// Deleting the rest leaves an empty table with no stale host tries.
	for _, r := range rt.Routes() {
		if !rt.Delete(r) {
			t.Errorf("Delete(%+v) of a listed route = false", r)
		}
	}
	tbl := rt.cur.Load()
	if rt.Len() != 0 || len(rt.Routes()) != 0 || tbl.any != nil || len(tbl.hosts) != 0 {
		t.Errorf("after deleting all: Len %d, Routes %v, any %v, hosts %d", rt.Len(), rt.Routes(), tbl.any, len(tbl.hosts))
	}
}

func TestDeleteKeepsChildren(t *testing.T) {
	rt := NewRouter[int]()
	for i, p := range []string{"/a", "/a/b/c"} {
		if err := rt.Set(Route{"", p}, i+1); err != nil {
			t.Fatal(err)
		}
	}
	if !rt.Delete(Route{"", "/a"}) {
		t.Fatal("Delete(/a) = false")
	}
	if v, _, ok := rt.Match("", "/a/b/c/d"); !ok || v != 2 {
		t.Errorf("Match(/a/b/c/d) = %v, %v; want 2, true", v, ok)
	}
	if _, _, ok := rt.Match("", "/a/b"); ok {
		t.Error("Match(/a/b) found a route after /a was deleted")
	}
}

func TestSetReplacesAndCanonicalizes(t *testing.T) {
	rt := NewRouter[int]()
	for i, r := range []Route{{"Example.COM", "/a/"}, {"example.com.", "/a"}, {"", "/"}, {"::1", "/"}, {"[::1]", "/"}} {
		if err := rt.Set(r, i); err != nil {
			t.Fatalf("Set(%+v): %v", r, err)
		}
	}
	want := []Route{{"", "/"}, {"::1", "/"}, {"example.com", "/a"}}
	if got := rt.Routes(); !slices.Equal(got, want) || rt.Len() != 3 {
		t.Errorf("Routes() = %+v, Len %d; want %+v, 3", got, rt.Len(), want)
	}
	if v, _, _ := rt.Match("EXAMPLE.com", "/a"); v != 1 {
		t.Errorf("Match = %d; want the later value 1", v)
	}
}

func TestReplace(t *testing.T) {
	rt := testRouter(t)
	rt.SetFallback("fb")
	before := rt.Routes()

	t.Run("bad route changes nothing", func(t *testing.T) {
		err := rt.Replace(map[Route]string{{"", "/new"}: "new", {"", "bad"}: "bad"})
		if !errors.Is(err, ErrRoute) {
			t.Fatalf("Replace = %v; want ErrRoute", err)
		}
		if got := rt.Routes(); !slices.Equal(got, before) {
			t.Errorf("Routes() = %+v; want unchanged %+v", got, before)
		}
		if v, _, _ := rt.Match("", "/new"); v != "root" {
			t.Errorf("Match(/new) = %q; want the old root", v)
		}
	})
	t.Run("duplicates after canonical form refused", func(t *testing.T) {
		err := rt.Replace(map[Route]string{{"", "/a"}: "1", {"", "/a/"}: "2"})
		if !errors.Is(err, ErrRoute) {
			t.Fatalf("Replace = %v; want ErrRoute", err)
		}
		if rt.Len() != len(before) {
			t.Errorf("Len() = %d; want %d", rt.Len(), len(before))
		}
	})
	t.Run("swap", func(t *testing.T) {
		err := rt.Replace(map[Route]string{{"", "/new/"}: "new", {"A.test", "/"}: "a"})
		if err != nil {
			t.Fatal(err)
		}
		want := []Route{{"", "/new"}, {"a.test", "/"}}
		if got := rt.Routes(); !slices.Equal(got, want) || rt.Len() != 2 {
			t.Errorf("Routes() = %+v, Len %d; want %+v", got, rt.Len(), want)
		}
		if v, _, _ := rt.Match("", "/new/x"); v != "new" {
			t.Errorf("Match(/new/x) = %q; want new", v)
		}
		if _, _, ok := rt.Match("", "/city-001"); ok {
			t.Error("old route still matches")
		}
		if v, ok := rt.Lookup(httptest.NewRequest("GET", "/zzz", nil)); v != "fb" || !ok {
			t.Errorf("Lookup miss = %q, %v; want the kept fallback", v, ok)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if err := rt.Replace(nil); err != nil {
			t.Fatal(err)
		}
		if rt.Len() != 0 {
			t.Errorf("Len() = %d; want 0", rt.Len())
		}
	})
}

func TestBadRoutes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
	}{
		{"empty prefix", Route{"", ""}},
		{"relative prefix", Route{"", "city-001"}},
		{"double slash", Route{"", "/a//b"}},
		{"trailing double slash", Route{"", "/a//"}},
		{"dot dot", Route{"", "/a/../b"}},
		{"dot dot at end", Route{"", "/.."}},
		{"dot", Route{"", "/a/./b"}},
		{"too long", Route{"", "/" + strings.Repeat("a", maxPrefix)}},
		{"host with port", Route{"example.com:8080", "/"}},
		{"host with space", Route{"exa mple.com", "/"}},
		{"host with slash", Route{"example.com/a", "/"}},
		{"wildcard host", Route{"*.example.com", "/"}},
		{"empty label", Route{"a..b", "/"}},
		{"leading dot", Route{".example.com", "/"}},
		{"just a dot", Route{".", "/"}},
		{"host too long", Route{strings.Repeat("a", maxHost+1), "/"}},
		{"ipv6 with port", Route{"[::1]:8080", "/"}},
		{"unclosed bracket", Route{"[::1", "/"}},
		{"name in brackets", Route{"[example.com]", "/"}},
		{"ipv4 in brackets", Route{"[10.0.0.1]", "/"}},
		{"ipv6 zone", Route{"fe80::1%eth0", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewRouter[int]()
			if err := rt.Set(tc.route, 1); !errors.Is(err, ErrRoute) {
				t.Errorf("Set(%+v) = %v; want ErrRoute", tc.route, err)
			}
			if err := rt.Replace(map[Route]int{tc.route: 1}); !errors.Is(err, ErrRoute) {
				t.Errorf("Replace(%+v) = %v; want ErrRoute", tc.route, err)
			}
			if rt.Len() != 0 {
				t.Errorf("Len() = %d after refused route", rt.Len())
			}
		})
	}
}

func TestGoodRoutes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		want  Route
	}{
		{"root", Route{"", "/"}, Route{"", "/"}},
		{"longest prefix", Route{"", "/" + strings.Repeat("a", maxPrefix-1)}, Route{"", "/" + strings.Repeat("a", maxPrefix-1)}},
		{"dots in names", Route{"", "/a.b/..c/"}, Route{"", "/a.b/..c"}},
		{"percent kept", Route{"", "/a%2Fb"}, Route{"", "/a%2Fb"}},
		{"upper host", Route{"EXAMPLE.com", "/"}, Route{"example.com", "/"}},
		{"trailing dot host", Route{"example.com.", "/"}, Route{"example.com", "/"}},
		{"underscore host", Route{"my_host", "/"}, Route{"my_host", "/"}},
		{"longest host", Route{strings.Repeat("a", maxHost), "/"}, Route{strings.Repeat("a", maxHost), "/"}},
		{"ipv6 bare", Route{"2001:DB8::1", "/"}, Route{"2001:db8::1", "/"}},
		{"ipv6 brackets", Route{"[2001:db8::1]", "/"}, Route{"2001:db8::1", "/"}},
		{"ipv4", Route{"192.0.2.1", "/"}, Route{"192.0.2.1", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewRouter[int]()
			if err := rt.Set(tc.route, 1); err != nil {
				t.Fatalf("Set(%+v) = %v", tc.route, err)
			}
			if got := rt.Routes(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("Routes() = %+v; want [%+v]", got, tc.want)
			}
		})
	}
}

func TestLongHostLowercased(t *testing.T) {
	rt := NewRouter[int]()
	h := strings.Repeat("a", maxHost)
	if err := rt.Set(Route{h, "/"}, 1); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := rt.Match(strings.ToUpper(h)+":80", "/"); v != 1 {
		t.Errorf("Match(upper 255-byte host) = %d; want 1", v)
	}
	if _, _, ok := rt.Match(strings.ToUpper(h)+"A", "/"); ok {
		t.Error("Match(256-byte host) found a route")
	}
}

// TestConcurrent has a writer change routes while readers match: run with
// -race. Each value names its route and a generation, so a reader can check
// that a result is whole (value and route from one table) and that it never
// goes back to a table older than one it has seen.
func TestConcurrent(t *testing.T) {
	type val struct {
		prefix string
		gen    int
	}
	const rooms = 32
	prefix := func(i int) string { return fmt.Sprintf("/room-%02d", i) }
	rt := NewRouter[val]()
	initial := map[Route]val{{"", "/"}: {"/", 0}}
	for i := range rooms {
		initial[Route{"", prefix(i)}] = val{prefix(i), 0}
	}
	if err := rt.Replace(initial); err != nil {
		t.Fatal(err)
	}

	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		rng := rand.New(rand.NewPCG(1, 2))
		for gen := 1; gen <= 3000; gen++ {
			p := prefix(rng.IntN(rooms))
			switch gen % 10 {
			case 0:
				rt.Delete(Route{"", p})
			case 1:
				rt.Set(Route{"host.test", p}, val{p, gen})
			case 2:
				rt.Delete(Route{"host.test", p})
			default:
				if err := rt.Set(Route{"", p + "/"}, val{p, gen}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			last := map[Route]int{}
			for n := 0; !done.Load() || n < 1000; n++ {
				i := rng.IntN(rooms)
				host := ""
				if n%2 == 1 {
					host = "HOST.test:80"
				}
				v, route, ok := rt.Match(host, prefix(i)+"/form")
				if !ok {
					t.Errorf("Match(%s) found nothing, but / is always there", prefix(i))
					return
				}
				if route.Prefix != v.prefix || (route.Prefix != prefix(i) && route.Prefix != "/") {
					t.Errorf("Match(%s) = %+v for route %+v: mixed or wrong", prefix(i), v, route)
					return
				}
				if v.gen < last[route] {
					t.Errorf("Match(%s) = gen %d after gen %d: went back in time", prefix(i), v.gen, last[route])
					return
				}
				last[route] = v.gen
			}
		})
	}
	wg.Wait()
}

// TestMatchAllocs checks the request path allocates nothing, including for a
// host that needs lowercasing and a port stripped.
func TestMatchAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 routes")
	}
	rt := cityRouter(t, 10_000, false)
	if err := rt.Set(Route{"example.com", "/city-05000/form"}, -1); err != nil {
		t.Fatal(err)
	}
	rt.SetFallback(-2)
	req := httptest.NewRequest("GET", "/city-05000/form/step2", nil)
	req.Host = "Example.COM:8080"
	miss := httptest.NewRequest("GET", "/nowhere/at/all", nil)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Match any host", func() { rt.Match("www.example.org", "/city-05000/form/step2") }},
		{"Match host with case and port", func() { rt.Match("Example.COM:8080", "/city-05000/form/step2") }},
		{"Match IPv6", func() { rt.Match("[2001:DB8::1]:443", "/city-00001/") }},
		{"Match miss", func() { rt.Match("a.test", "/nowhere") }},
		{"Lookup", func() { rt.Lookup(req) }},
		{"Lookup fallback", func() { rt.Lookup(miss) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.f); n != 0 {
				t.Errorf("%v allocations per call; want 0", n)
			}
		})
	}
}

// TestRouterMemory bounds the heap 10,000 routes keep, strings included.
func TestRouterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 routes")
	}
	bytes := routerHeap(t, 10_000)
	t.Logf("10,000 routes: %.0f bytes on the heap", bytes)
	if bytes > 5<<20 {
		t.Errorf("10,000 routes take %.0f bytes; want under 5 MB", bytes)
	}
}

// routerHeap returns the heap bytes a router of n routes keeps, measured
// around building it, with the input map dropped.
func routerHeap(t testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rt := cityRouter(t, n, false)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(rt)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// cityRouter returns a router of n routes "/city-00001/"..., or with hosts
// "city-00001.example.com" and prefix "/".
func cityRouter(t testing.TB, n int, hosts bool) *Router[int] {
	t.Helper()
	rt := NewRouter[int]()
	if err := rt.Replace(cityRoutes(n, hosts)); err != nil {
		t.Fatal(err)
	}
	return rt
}

func cityRoutes(n int, hosts bool) map[Route]int {
	m := make(map[Route]int, n)
	for i := 1; i <= n; i++ {
		if hosts {
			m[Route{fmt.Sprintf("city-%05d.example.com", i), "/"}] = i
		} else {
			m[Route{"", fmt.Sprintf("/city-%05d/", i)}] = i
		}
	}
	return m
}

func BenchmarkMatch(b *testing.B) {
	rt := cityRouter(b, 10_000, false)
	const p = "/city-05000/form/step2"
	if v, _, ok := rt.Match("www.example.org", p); !ok || v != 5000 {
		b.Fatalf("Match = %d, %v", v, ok)
	}
	b.ReportAllocs()
	for b.Loop() {
		rt.Match("www.example.org", p)
	}
}

func BenchmarkMatchHost(b *testing.B) {
	rt := cityRouter(b, 10_000, true)
	for _, host := range []string{"city-05000.example.com", "City-05000.Example.COM:8080"} {
		b.Run(host, func(b *testing.B) {
			if v, _, ok := rt.Match(host, "/form/step2"); !ok || v != 5000 {
				b.Fatalf("Match = %d, %v", v, ok)
			}
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(host, "/form/step2")
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	rt := cityRouter(b, 10_000, false)
	rt.SetFallback(-1)
	for _, target := range []string{"/city-05000/form/step2", "/nowhere/at/all"} {
		b.Run(target, func(b *testing.B) {
			r := httptest.NewRequest("GET", target, nil)
			r.Host = "Example.COM:8080"
			b.ReportAllocs()
			for b.Loop() {
				rt.Lookup(r)
			}
		})
	}
}

// BenchmarkSet is one change to a table of 10,000 sibling routes: the
// price of copy-on-write, paid by the writer.
func BenchmarkSet(b *testing.B) {
	rt := cityRouter(b, 10_000, false)
	r := Route{"", "/city-05000"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := rt.Set(r, i); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouterMemory times Replace with 10,000 routes and reports the heap
// such a router keeps.
func BenchmarkRouterMemory(b *testing.B) {
	routes := cityRoutes(10_000, false)
	rt := NewRouter[int]()
	b.ReportAllocs()
	for b.Loop() {
		if err := rt.Replace(routes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(routerHeap(b, 10_000), "B/10k-routes")
}
