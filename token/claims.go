package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Header types and key-derivation labels, one per kind of token.
const (
	typTicket   = "wr-ticket+jwt"
	typPass     = "wr-pass+jwt"
	ticketLabel = "waitingroom ticket v1"
	passLabel   = "waitingroom pass v1"
	secretLabel = "waitingroom secret v1 "
	printLabel  = "waitingroom key print v1"
)

// Reasons wrapped around ErrInvalid, built once so rejecting costs no allocation.
var (
	errMalformed  = fmt.Errorf("%w: malformed", ErrInvalid)
	errSignature  = fmt.Errorf("%w: bad signature or algorithm", ErrInvalid)
	errWrongType  = fmt.Errorf("%w: wrong token type", ErrInvalid)
	errUnknownKey = fmt.Errorf("%w: unknown key id", ErrInvalid)
	errWrongRoom  = fmt.Errorf("%w: wrong room", ErrInvalid)
)

// Times a token can carry: after the Unix epoch (0 means "absent" on the wire)
// and before year 10000.
const maxUnixSeconds = 253402300799

// registered holds the standard claims both kinds share. Exp and Iat are whole
// seconds (NumericDate); finer times travel in private millisecond claims.
type registered struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat,omitempty"`
}

// parse reads the registered claims that open every payload. Claims are read
// only after the signature verified, so a token for another room is authentic
// and errWrongRoom says so. Aud is set to room itself: no copy per token.
func (c *registered) parse(r *claimReader, room string) error {
	r.lit(`{"aud":`)
	aud := r.str()
	if r.bad {
		return errMalformed
	}
	if string(aud) != room || room == "" {
		return errWrongRoom
	}
	c.Aud = room
	r.lit(`,"exp":`)
	c.Exp = r.int()
	c.Iat = r.optInt(`,"iat":`)
	if !r.bad && c.Exp <= 0 {
		return errMalformed
	}
	return nil
}

// ticketClaims is a Ticket on the wire. Field order and omitempty must match
// appendJSON and parse; TestAppendJSONMatchesEncodingJSON and FuzzClaims hold
// them together.
type ticketClaims struct {
	registered
	Num int64  `json:"tkt,omitempty"`
	Ep  int64  `json:"ep,omitempty"`
	Jn  int64  `json:"jn,omitempty"` // Joined, Unix ms
	Lu  int64  `json:"lu,omitempty"` // LastUpdated, Unix ms
	Ahd int64  `json:"ahd,omitempty"`
	Wk  bool   `json:"wk,omitempty"`
	W25 int64  `json:"w25,omitempty"` // seconds
	W50 int64  `json:"w50,omitempty"`
	W75 int64  `json:"w75,omitempty"`
	Np  int64  `json:"np,omitempty"`  // NextPoll, Unix ms
	Ah0 int64  `json:"ah0,omitempty"` // AheadAtEntry
	Bnd string `json:"bnd,omitempty"` // Binding
}

func (c *ticketClaims) from(t *Ticket) error {
	var err error
	if err = checkText("ticket", "Room", t.Room, true); err != nil {
		return err
	}
	if t.Number < 0 || t.UsersAhead < 0 || t.AheadAtEntry < 0 || t.Wait25 < 0 || t.Wait50 < 0 || t.Wait75 < 0 {
		return fmt.Errorf("%w: ticket has a negative number, count or wait", ErrInvalid)
	}
	c.Aud = t.Room
	if c.Exp, err = seconds("ticket", "Expires", t.Expires); err != nil {
		return err
	}
	if c.Jn, err = millis("ticket", "Joined", t.Joined); err != nil {
		return err
	}
	if c.Lu, err = millis("ticket", "LastUpdated", t.LastUpdated); err != nil {
		return err
	}
	if c.Np, err = millis("ticket", "NextPoll", t.NextPoll); err != nil {
		return err
	}
	c.Iat = c.Lu / 1000 // the ticket is issued at its last update
	c.Num, c.Ep, c.Ahd, c.Wk = t.Number, t.Epoch, t.UsersAhead, t.WaitKnown
	c.W25, c.W50, c.W75 = waitSeconds(t.Wait25), waitSeconds(t.Wait50), waitSeconds(t.Wait75)
	c.Ah0 = t.AheadAtEntry
	if !validBinding(t.Binding) {
		return fmt.Errorf("%w: ticket Binding %q is not a Codec.Bind value", ErrInvalid, t.Binding)
	}
	c.Bnd = t.Binding
	return nil
}

func (c *ticketClaims) ticket() Ticket {
	t := Ticket{
		Room:        c.Aud,
		Number:      c.Num,
		Epoch:       c.Ep,
		Joined:      fromMillis(c.Jn),
		LastUpdated: fromMillis(c.Lu),
		Expires:     time.Unix(c.Exp, 0).UTC(),
		UsersAhead:  c.Ahd,
		WaitKnown:   c.Wk,
		Wait25:      time.Duration(c.W25) * time.Second,
		Wait50:      time.Duration(c.W50) * time.Second,
		Wait75:      time.Duration(c.W75) * time.Second,
		NextPoll:    fromMillis(c.Np),
	}
	t.AheadAtEntry = c.Ah0
	t.Binding = c.Bnd
	return t
}

// parse reads b, the payload of a ticket for room, in appendJSON's spelling only.
func (c *ticketClaims) parse(b []byte, room string) error {
	r := claimReader{b: b}
	if err := c.registered.parse(&r, room); err != nil {
		return err
	}
	c.Num = r.optInt(`,"tkt":`)
	c.Ep = r.optInt(`,"ep":`)
	c.Jn = r.optInt(`,"jn":`)
	c.Lu = r.optInt(`,"lu":`)
	c.Ahd = r.optInt(`,"ahd":`)
	c.Wk = r.opt(`,"wk":true`)
	c.W25 = r.optInt(`,"w25":`)
	c.W50 = r.optInt(`,"w50":`)
	c.W75 = r.optInt(`,"w75":`)
	c.Np = r.optInt(`,"np":`)
	c.Ah0 = r.optInt(`,"ah0":`)
	c.Bnd = r.optBinding()
	return r.end()
}

func (c *ticketClaims) appendJSON(b []byte) []byte {
	b = c.registered.appendJSON(b)
	b = appendInt(b, `,"tkt":`, c.Num)
	b = appendInt(b, `,"ep":`, c.Ep)
	b = appendInt(b, `,"jn":`, c.Jn)
	b = appendInt(b, `,"lu":`, c.Lu)
	b = appendInt(b, `,"ahd":`, c.Ahd)
	if c.Wk {
		b = append(b, `,"wk":true`...)
	}
	b = appendInt(b, `,"w25":`, c.W25)
	b = appendInt(b, `,"w50":`, c.W50)
	b = appendInt(b, `,"w75":`, c.W75)
	b = appendInt(b, `,"np":`, c.Np)
	b = appendInt(b, `,"ah0":`, c.Ah0)
	b = appendBinding(b, c.Bnd)
	return append(b, '}')
}

// passClaims is a Pass on the wire; see ticketClaims.
type passClaims struct {
	registered
	Sid int64  `json:"sid,omitempty"`
	Ep  int64  `json:"ep,omitempty"`
	Is  int64  `json:"is,omitempty"` // Issued, Unix ms
	Ad  int64  `json:"ad,omitempty"` // Admitted, Unix ms
	Rn  int64  `json:"rn,omitempty"` // RenewAt, Unix ms
	Scp string `json:"scp,omitempty"`
	Bnd string `json:"bnd,omitempty"` // Binding
	Loc int64  `json:"loc,omitempty"` // Local: 1
}

func (c *passClaims) from(p *Pass) error {
	var err error
	if err = checkText("pass", "Room", p.Room, true); err != nil {
		return err
	}
	if err = checkText("pass", "Scope", p.Scope, false); err != nil {
		return err
	}
	if !validBinding(p.Binding) {
		return fmt.Errorf("%w: pass Binding %q is not a Codec.Bind value", ErrInvalid, p.Binding)
	}
	c.Aud, c.Scp, c.Bnd = p.Room, p.Scope, p.Binding
	if c.Exp, err = seconds("pass", "Expires", p.Expires); err != nil {
		return err
	}
	if c.Is, err = millis("pass", "Issued", p.Issued); err != nil {
		return err
	}
	if c.Ad, err = millis("pass", "Admitted", p.Admitted); err != nil {
		return err
	}
	if c.Rn, err = millis("pass", "RenewAt", p.RenewAt); err != nil {
		return err
	}
	c.Iat = c.Is / 1000
	c.Sid, c.Ep = p.Session, p.Epoch
	c.Loc = 0
	if p.Local {
		c.Loc = 1
	}
	return nil
}

func (c *passClaims) pass() Pass {
	return Pass{
		Room:     c.Aud,
		Session:  c.Sid,
		Epoch:    c.Ep,
		Issued:   fromMillis(c.Is),
		Admitted: fromMillis(c.Ad),
		Expires:  time.Unix(c.Exp, 0).UTC(),
		RenewAt:  fromMillis(c.Rn),
		Scope:    c.Scp,
		Binding:  c.Bnd,
		Local:    c.Loc == 1,
	}
}

// parse reads b, the payload of a pass for room, in appendJSON's spelling only.
func (c *passClaims) parse(b []byte, room string) error {
	r := claimReader{b: b}
	if err := c.registered.parse(&r, room); err != nil {
		return err
	}
	c.Sid = r.optInt(`,"sid":`)
	c.Ep = r.optInt(`,"ep":`)
	c.Is = r.optInt(`,"is":`)
	c.Ad = r.optInt(`,"ad":`)
	c.Rn = r.optInt(`,"rn":`)
	if r.opt(`,"scp":`) {
		scp := r.str()
		if len(scp) == 0 {
			r.bad = true // omitempty: an empty scope is not written
		}
		c.Scp = string(scp)
	}
	c.Bnd = r.optBinding()
	if c.Loc = r.optInt(`,"loc":`); c.Loc != 0 && c.Loc != 1 {
		r.bad = true
	}
	return r.end()
}

func (c *passClaims) appendJSON(b []byte) []byte {
	b = c.registered.appendJSON(b)
	b = appendInt(b, `,"sid":`, c.Sid)
	b = appendInt(b, `,"ep":`, c.Ep)
	b = appendInt(b, `,"is":`, c.Is)
	b = appendInt(b, `,"ad":`, c.Ad)
	b = appendInt(b, `,"rn":`, c.Rn)
	if c.Scp != "" {
		b = appendString(append(b, `,"scp":`...), c.Scp)
	}
	b = appendBinding(b, c.Bnd)
	b = appendInt(b, `,"loc":`, c.Loc)
	return append(b, '}')
}

// appendJSON writes the opening brace and the registered claims; the caller
// appends its own claims and the closing brace. Hand-written because signing
// happens on every counted poll and reflection would dominate its cost.
func (r *registered) appendJSON(b []byte) []byte {
	b = appendString(append(b, `{"aud":`...), r.Aud)
	b = strconv.AppendInt(append(b, `,"exp":`...), r.Exp, 10)
	return appendInt(b, `,"iat":`, r.Iat)
}

// appendInt appends key and v, or nothing when v is 0 (omitempty).
func appendInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendString appends s as a JSON string exactly as encoding/json would.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		// encoding/json escapes these (and non-ASCII only when invalid), so
		// leave anything unusual to it.
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// claimReader reads a payload in the one spelling appendJSON writes: claims in
// its order, no whitespace, no optional claim with its zero value, integers
// without '+', leading zeros or exponent, strings escaped as encoding/json
// escapes them. Anything else sets bad, so no two payloads carry the same
// claims. Hand-written for the same reason as appendJSON, and because a
// general JSON decoder accepts many spellings of one object.
type claimReader struct {
	b   []byte
	bad bool
}

// opt consumes s if the input goes on with it.
func (r *claimReader) opt(s string) bool {
	if r.bad || len(r.b) < len(s) || string(r.b[:len(s)]) != s {
		return false
	}
	r.b = r.b[len(s):]
	return true
}

// lit consumes s, which must come next.
func (r *claimReader) lit(s string) {
	if !r.opt(s) {
		r.bad = true
	}
}

// end checks that the object closes and nothing follows.
func (r *claimReader) end() error {
	r.lit("}")
	if r.bad || len(r.b) != 0 {
		return errMalformed
	}
	return nil
}

// int reads an int64 as strconv.AppendInt writes it.
func (r *claimReader) int() int64 {
	if r.bad {
		return 0
	}
	neg := r.opt("-")
	limit := uint64(1<<63 - 1)
	if neg {
		limit++
	}
	var u uint64
	i := 0
	for ; i < len(r.b) && '0' <= r.b[i] && r.b[i] <= '9'; i++ {
		d := uint64(r.b[i] - '0')
		if u > (limit-d)/10 {
			r.bad = true
			return 0
		}
		u = u*10 + d
	}
	if i == 0 || r.b[0] == '0' && (i > 1 || neg) { // no digits, a leading zero, or -0
		r.bad = true
		return 0
	}
	r.b = r.b[i:]
	if neg {
		return -int64(u) // for u = 1<<63, int64(u) is already MinInt64
	}
	return int64(u)
}

// optInt reads key and a nonzero integer, or returns 0 if key is not next.
func (r *claimReader) optInt(key string) int64 {
	if !r.opt(key) {
		return 0
	}
	v := r.int()
	if v == 0 {
		r.bad = true // omitempty: a zero is not written
	}
	return v
}

// str reads a string as appendString writes it and returns its value: the
// bytes between the quotes when no byte needed escaping, so that reading a
// plain room name copies nothing.
func (r *claimReader) str() []byte {
	b := r.b
	if r.bad || len(b) == 0 || b[0] != '"' {
		r.bad = true
		return nil
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			r.b = r.b[i+1:] // not b[i+1:]: escape analysis knows only this self-slice is harmless
			return b[1:i]
		case c < 0x20 || c >= 0x7f || c == '\\' || c == '<' || c == '>' || c == '&':
			return r.escaped()
		}
	}
	r.bad = true
	return nil
}

// escaped reads a string that appendString left to encoding/json: it must
// decode, and marshal back to the same bytes.
func (r *claimReader) escaped() []byte {
	b := r.b
	end := 1
	for ; end < len(b) && b[end] != '"'; end++ {
		if b[end] == '\\' {
			end++
		}
	}
	if end >= len(b) {
		r.bad = true
		return nil
	}
	tok := append([]byte(nil), b[:end+1]...) // json.Unmarshal keeps its input: copy, not the caller's buffer
	var s string
	if json.Unmarshal(tok, &s) != nil || !bytes.Equal(appendString(nil, s), tok) {
		r.bad = true
		return nil
	}
	r.b = r.b[end+1:]
	return []byte(s)
}

// checkText rejects strings that would not survive the round trip: invalid
// UTF-8 is replaced by encoding/json, so the token would name another room.
func checkText(kind, field, s string, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s has no %s", ErrInvalid, kind, field)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %s is not valid UTF-8", ErrInvalid, kind, field)
	}
	return nil
}

// seconds returns t as a required NumericDate, rounded down so a token never
// outlives the time it was given.
func seconds(kind, field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, fmt.Errorf("%w: %s has no %s", ErrInvalid, kind, field)
	}
	s := t.Unix()
	if s <= 0 || s > maxUnixSeconds {
		return 0, fmt.Errorf("%w: %s %s out of range", ErrInvalid, kind, field)
	}
	return s, nil
}

// millis returns t in Unix milliseconds, 0 for the zero Time.
func millis(kind, field string, t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	ms := t.UnixMilli()
	if s := t.Unix(); s < 0 || s > maxUnixSeconds || ms <= 0 {
		return 0, fmt.Errorf("%w: %s %s out of range", ErrInvalid, kind, field)
	}
	return ms, nil
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func waitSeconds(d time.Duration) int64 {
	return int64(d.Round(time.Second) / time.Second)
}

// bindingLen is the length of a binding: 16 lowercase hex digits (Codec.Bind).
const bindingLen = 16

// validBinding reports whether b is "" or a Codec.Bind value.
func validBinding(b string) bool {
	if b == "" {
		return true
	}
	if len(b) != bindingLen {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// optBinding reads an optional "bnd" claim, in appendBinding's spelling only.
func (r *claimReader) optBinding() string {
	if !r.opt(`,"bnd":`) {
		return ""
	}
	v := r.str()
	if len(v) == 0 || !validBinding(string(v)) {
		r.bad = true
		return ""
	}
	return string(v)
}

func appendBinding(b []byte, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, `,"bnd":`...), v)
}
