// Package rooms holds many waiting rooms sharing one store: a registry that
// follows their settings in the store and a router that picks a request's
// room.
package rooms

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrRoute reports a route that Set or Replace refused.
var ErrRoute = errors.New("rooms: invalid route")

const (
	// maxPrefix bounds a prefix so a route stays a few hundred segments deep.
	maxPrefix = 1024
	// maxHost is the longest DNS name; it also sizes the stack buffer that
	// lowercases request hosts without allocating.
	maxHost = 255
)

// Route is one routing rule.
//
// Host "" matches any host. Otherwise Host is a bare host name or IP address,
// without port, compared case-insensitively with the request's host after its
// port is stripped; an IPv6 address may be given with or without brackets.
//
// Prefix starts with "/" and matches the path itself and everything under it
// at a segment boundary: "/city-001" and "/city-001/" are the same rule and
// both match "/city-001", "/city-001/" and "/city-001/form" but not
// "/city-0012". Prefix "/" matches every path.
type Route struct {
	Host, Prefix string
}

// Router maps requests to values by host and longest path prefix.
//
// Lookups read an immutable table through an atomic pointer, so they take no
// lock and never wait for writers; Set, Delete and Replace build a new table
// (copying only the maps on the changed path) and swap it in. That suits a
// few changes a minute against many lookups a second.
//
// The zero value is not usable; use NewRouter.
type Router[T any] struct {
	mu  sync.Mutex // serializes writers so no change is lost
	cur atomic.Pointer[table[T]]
}

// table is one immutable version of the routes; it is never changed once
// published.
type table[T any] struct {
	hosts       map[string]*node[T] // canonical host -> path trie
	any         *node[T]            // routes for any host; nil when none
	n           int
	fallback    T
	hasFallback bool
}

// node is one path segment of a trie. Children are keyed by segment so a
// lookup with a substring of the request path does not allocate.
type node[T any] struct {
	children map[string]*node[T]
	val      T
	route    Route // canonical route of val, returned by Match
	set      bool
}

// NewRouter returns an empty router.
func NewRouter[T any]() *Router[T] {
	rt := &Router[T]{}
	rt.cur.Store(&table[T]{})
	return rt
}

// Set adds a route or replaces its value. The route is stored in canonical
// form (host lowercased, without brackets or trailing dot; prefix without
// trailing slash), which is how Match and Routes report it.
//
// A change copies the maps on the route's path, so it costs time in
// proportion to the number of sibling routes; load many routes with Replace.
func (rt *Router[T]) Set(route Route, v T) error {
	r, err := canonRoute(route)
	if err != nil {
		return err
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	old := rt.cur.Load()
	root, added := old.root(r.Host).with(r.Prefix, r, v)
	t := old.withRoot(r.Host, root)
	if added {
		t.n++
	}
	rt.cur.Store(t)
	return nil
}

// Delete removes a route and reports whether it was there. Either spelling
// of a prefix ("/a" or "/a/") names the same route.
func (rt *Router[T]) Delete(route Route) bool {
	r, err := canonRoute(route)
	if err != nil {
		return false
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	old := rt.cur.Load()
	root, removed := old.root(r.Host).without(r.Prefix)
	if !removed {
		return false
	}
	t := old.withRoot(r.Host, root)
	t.n--
	rt.cur.Store(t)
	return true
}

// Replace swaps the whole table at once, keeping the fallback, so no lookup
// sees a mix of old and new routes. It checks every route first and changes
// nothing on error, including when two routes are the same once canonical
// ("/a" and "/a/"), since which one won would be left to chance.
func (rt *Router[T]) Replace(routes map[Route]T) error {
	canon := make(map[Route]Route, len(routes))
	for route := range routes {
		r, err := canonRoute(route)
		if err != nil {
			return err
		}
		if prev, dup := canon[r]; dup {
			return fmt.Errorf("%w: %+v and %+v are the same route", ErrRoute, prev, route)
		}
		canon[r] = route
	}
	t := &table[T]{n: len(routes)}
	for r, route := range canon {
		root := t.root(r.Host)
		if root == nil {
			root = &node[T]{}
			if r.Host == "" {
				t.any = root
			} else {
				if t.hosts == nil {
					t.hosts = make(map[string]*node[T])
				}
				t.hosts[r.Host] = root
			}
		}
		root.put(r.Prefix, r, routes[route])
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	old := rt.cur.Load()
	t.fallback, t.hasFallback = old.fallback, old.hasFallback
	rt.cur.Store(t)
	return nil
}

// Match finds the route for host and path. Routes for the request's host win
// over any-host routes whatever their prefix lengths, so a host can be given
// its own rooms; within one class the longest prefix wins. Host may carry a
// port. Path is matched as given, without percent-decoding (r.URL.Path is
// already decoded); empty segments are skipped and dot segments resolved as
// path.Clean does, so "/a/../b" cannot slip past the room of "/b". Only that
// last case allocates.
func (rt *Router[T]) Match(host, path string) (v T, route Route, ok bool) {
	return rt.cur.Load().match(host, path)
}

// Lookup returns the value for r: Match(r.Host, r.URL.Path), or the fallback
// when no route matches and a fallback is set.
func (rt *Router[T]) Lookup(r *http.Request) (v T, ok bool) {
	t := rt.cur.Load()
	p := ""
	if r.URL != nil {
		p = r.URL.Path
	}
	if v, _, ok := t.match(r.Host, p); ok {
		return v, true
	}
	return t.fallback, t.hasFallback
}

// SetFallback sets the value Lookup returns for requests no route matches,
// so unmatched traffic goes somewhere chosen rather than nowhere by accident.
func (rt *Router[T]) SetFallback(v T) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	t := *rt.cur.Load()
	t.fallback, t.hasFallback = v, true
	rt.cur.Store(&t)
}

// ClearFallback removes the fallback, so Lookup reports unmatched requests.
func (rt *Router[T]) ClearFallback() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	t := *rt.cur.Load()
	var zero T
	t.fallback, t.hasFallback = zero, false
	rt.cur.Store(&t)
}

// Len returns the number of routes.
func (rt *Router[T]) Len() int {
	return rt.cur.Load().n
}

// Routes returns the routes in canonical form, sorted by host (any-host
// first) then prefix.
func (rt *Router[T]) Routes() []Route {
	t := rt.cur.Load()
	out := make([]Route, 0, t.n)
	out = t.any.collect(out)
	for _, root := range t.hosts {
		out = root.collect(out)
	}
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Prefix, b.Prefix))
	})
	return out
}

func (t *table[T]) match(host, p string) (v T, route Route, ok bool) {
	if hasDotSegment(p) {
		p = cleanPath(p)
	}
	if len(t.hosts) > 0 {
		if n := t.hostRoot(host).longest(p); n != nil {
			return n.val, n.route, true
		}
	}
	if n := t.any.longest(p); n != nil {
		return n.val, n.route, true
	}
	return v, Route{}, false
}

// hostRoot returns the trie for a request host without allocating: the port
// and a trailing dot are cut off by slicing, and only a host with upper-case
// letters is lowercased, into a stack buffer (a map lookup keyed by
// string(bytes) does not allocate).
func (t *table[T]) hostRoot(host string) *node[T] {
	h := requestHost(host)
	upper := false
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return t.hosts[h]
	}
	if len(h) > maxHost {
		return nil // no route host is this long
	}
	var buf [maxHost]byte
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return t.hosts[string(buf[:len(h)])]
}

// root returns the trie for a canonical route host, or nil.
func (t *table[T]) root(host string) *node[T] {
	if host == "" {
		return t.any
	}
	return t.hosts[host]
}

// withRoot returns a copy of t whose trie for host is root (nil: none). The
// hosts map is copied only when a host route changes.
func (t *table[T]) withRoot(host string, root *node[T]) *table[T] {
	c := *t
	if host == "" {
		c.any = root
		return &c
	}
	c.hosts = maps.Clone(t.hosts)
	if root == nil {
		delete(c.hosts, host)
	} else {
		if c.hosts == nil {
			c.hosts = make(map[string]*node[T], 1)
		}
		c.hosts[host] = root
	}
	return &c
}

// longest walks p's segments once and returns the deepest node with a value.
func (n *node[T]) longest(p string) *node[T] {
	var best *node[T]
	for n != nil {
		if n.set {
			best = n
		}
		if len(n.children) == 0 {
			break
		}
		var seg string
		seg, p = nextSegment(p)
		if seg == "" {
			break
		}
		n = n.children[seg]
	}
	return best
}

// with returns a copy of n (nil: empty) with v at prefix p, sharing every
// subtree off that path, and whether the route is new.
func (n *node[T]) with(p string, r Route, v T) (*node[T], bool) {
	c := &node[T]{}
	if n != nil {
		*c = *n
	}
	seg, rest := nextSegment(p)
	if seg == "" {
		added := !c.set
		c.val, c.route, c.set = v, r, true
		return c, added
	}
	var child *node[T]
	if n != nil {
		child = n.children[seg]
	}
	child, added := child.with(rest, r, v)
	c.children = maps.Clone(c.children)
	if c.children == nil {
		c.children = make(map[string]*node[T], 1)
	}
	c.children[seg] = child
	return c, added
}

// without returns a copy of n without the value at prefix p, pruning nodes
// left empty (nil when n itself is), and whether there was a value.
func (n *node[T]) without(p string) (*node[T], bool) {
	if n == nil {
		return nil, false
	}
	seg, rest := nextSegment(p)
	if seg == "" {
		if !n.set {
			return n, false
		}
		if len(n.children) == 0 {
			return nil, true
		}
		c := *n
		var zero T
		c.val, c.route, c.set = zero, Route{}, false
		return &c, true
	}
	child, removed := n.children[seg].without(rest)
	if !removed {
		return n, false
	}
	if child == nil && len(n.children) == 1 && !n.set {
		return nil, true
	}
	c := *n
	c.children = maps.Clone(n.children)
	if child == nil {
		delete(c.children, seg)
	} else {
		c.children[seg] = child
	}
	return &c, true
}

// put sets v at prefix p in place; only for a table not yet published.
func (n *node[T]) put(p string, r Route, v T) {
	for {
		var seg string
		seg, p = nextSegment(p)
		if seg == "" {
			break
		}
		child := n.children[seg]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*node[T], 1)
			}
			child = &node[T]{}
			n.children[seg] = child
		}
		n = child
	}
	n.val, n.route, n.set = v, r, true
}

func (n *node[T]) collect(out []Route) []Route {
	if n == nil {
		return out
	}
	if n.set {
		out = append(out, n.route)
	}
	for _, c := range n.children {
		out = c.collect(out)
	}
	return out
}

// nextSegment returns p's first non-empty segment ("" when none) and the
// rest; skipping empty segments makes "//a/" match like "/a".
func nextSegment(p string) (seg, rest string) {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p string) bool {
	if !strings.HasPrefix(p, ".") && !strings.Contains(p, "/.") {
		return false // the common case, checked without a loop
	}
	for {
		var seg string
		seg, p = nextSegment(p)
		switch seg {
		case "":
			return false
		case ".", "..":
			return true
		}
	}
}

func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// requestHost cuts the port and a trailing dot off a Host header value by
// slicing: "[::1]:8080" -> "::1", "Example.COM.:8080" -> "Example.COM".
func requestHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i] // one colon: host:port; more: a bare IPv6 address
	}
	if len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}

func canonRoute(r Route) (Route, error) {
	p, err := canonPrefix(r.Prefix)
	if err != nil {
		return Route{}, err
	}
	h, err := canonHost(r.Host)
	if err != nil {
		return Route{}, err
	}
	return Route{Host: h, Prefix: p}, nil
}

func canonPrefix(p string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: prefix %.64q %s", ErrRoute, p, why)
	}
	switch {
	case p == "":
		return bad("is empty")
	case p[0] != '/':
		return bad(`does not start with "/"`)
	case len(p) > maxPrefix:
		return bad(fmt.Sprintf("is over %d bytes", maxPrefix))
	case strings.Contains(p, "//"):
		return bad(`has an empty segment ("//")`)
	}
	for s := range strings.SplitSeq(p[1:], "/") {
		if s == "." || s == ".." {
			// Request paths are cleaned before matching, so such a
			// route could never match.
			return bad("has a dot segment")
		}
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

// canonHost lowercases a route host and checks it. A port is refused rather
// than ignored: ports take no part in matching, so a route naming one is a
// mistake that would otherwise pass silently.
func canonHost(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: host %.64q %s", ErrRoute, h, why)
	}
	c := strings.ToLower(h)
	if strings.HasPrefix(c, "[") {
		if !strings.HasSuffix(c, "]") {
			return bad("has a port or a missing ']'")
		}
		c = c[1 : len(c)-1]
		if a, err := netip.ParseAddr(c); err != nil || !a.Is6() || a.Zone() != "" {
			return bad("is not an IPv6 address without zone")
		}
		return c, nil
	}
	if strings.Contains(c, ":") {
		if a, err := netip.ParseAddr(c); err != nil || !a.Is6() || a.Zone() != "" {
			return bad("has a port (routes match hosts without port) or is malformed")
		}
		return c, nil
	}
	c = strings.TrimSuffix(c, ".")
	if c == "" || len(c) > maxHost {
		return bad(fmt.Sprintf("is empty or over %d bytes", maxHost))
	}
	for label := range strings.SplitSeq(c, ".") {
		if label == "" {
			return bad("has an empty label")
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return bad("has a character other than letters, digits, '-', '_' and '.'")
			}
		}
	}
	return c, nil
}
