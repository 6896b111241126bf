package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Header types and key-derivation labels, one per kind of token.
const (
	typTicket   = "wr-ticket+jwt"
	typPass     = "wr-pass+jwt"
	ticketLabel = "waitingroom ticket v1"
	passLabel   = "waitingroom pass v1"
	secretLabel = "waitingroom secret v1 "

	algHS256 = "HS256"
	algEdDSA = "EdDSA"
	algES256 = "ES256"
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

// deriveKey returns HMAC-SHA256(secret, label), the MAC key for one kind of token.
func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// verifyKey is one key a token may name in its "kid" header.
type verifyKey struct {
	id  string
	alg string
	key any // boxed once, so the keyfunc returns it without allocating
}

// verifier checks one kind of token: header type, algorithm and key ID.
type verifier struct {
	typ     string
	keys    []verifyKey
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
}

func newVerifier(typ string, keys []verifyKey) *verifier {
	var algs []string
	for _, k := range keys {
		if !contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	v := &verifier{typ: typ, keys: keys}
	// Claims are checked by us against the caller's (store) clock, not by jwt
	// against the wall clock. Strict decoding makes every token have exactly one
	// encoding, so flipping unused base64 bits does not yield a second valid token.
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithoutClaimsValidation(),
		jwt.WithStrictDecoding(),
	)
	v.keyfunc = v.lookup
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// lookup is the jwt.Keyfunc. jwt has already checked the algorithm against the
// allowed list; the key must also have been registered for that algorithm, so
// an HS256 token naming an Ed25519 key ID is not checked against anything.
func (v *verifier) lookup(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != v.typ {
		return nil, errWrongType
	}
	kid, _ := t.Header["kid"].(string)
	alg := t.Method.Alg()
	for i := range v.keys {
		if k := &v.keys[i]; k.id == kid && k.alg == alg {
			return k.key, nil
		}
	}
	return nil, errUnknownKey
}

// verify checks size, structure, type, algorithm, key and signature of s and
// decodes its payload into claims. It does not look at the claims.
func (v *verifier) verify(s string, claims jwt.Claims) error {
	if len(s) > MaxSize {
		return ErrTooLarge
	}
	if _, err := v.parser.ParseWithClaims(s, claims, v.keyfunc); err != nil {
		switch {
		case errors.Is(err, errWrongType):
			return errWrongType
		case errors.Is(err, errUnknownKey):
			return errUnknownKey
		case errors.Is(err, jwt.ErrTokenSignatureInvalid):
			return errSignature
		default:
			return errMalformed
		}
	}
	return nil
}

func (v *verifier) parsePass(room, s string, now time.Time) (Pass, error) {
	var pc passClaims
	if err := v.verify(s, &pc); err != nil {
		return Pass{}, err
	}
	if err := pc.check(room); err != nil {
		return Pass{}, err
	}
	p := pc.pass()
	if !now.Before(p.Expires) {
		return p, ErrExpired
	}
	return p, nil
}

// signKey signs one kind of token with one key.
type signKey struct {
	header string // base64url of {"alg","kid","typ"}: constant per key, so encoded once
	method jwt.SigningMethod
	key    any
}

func newSignKey(method jwt.SigningMethod, kid, typ string, key any) (signKey, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{method.Alg(), kid, typ})
	if err != nil {
		return signKey{}, err
	}
	return signKey{header: base64.RawURLEncoding.EncodeToString(h), method: method, key: key}, nil
}

// sign returns header.payload.signature for the JSON payload.
func (k *signKey) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	n := len(k.header) + 1 + enc.EncodedLen(len(payload))
	b := make([]byte, n, n+1+enc.EncodedLen(64)) // 64: the longest signature (EdDSA, ES256)
	copy(b, k.header)
	b[len(k.header)] = '.'
	enc.Encode(b[len(k.header)+1:], payload)
	sig, err := k.method.Sign(string(b), k.key)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	if len(b) > MaxSize {
		return "", ErrTooLarge
	}
	return string(b), nil
}

// registered holds the standard claims both kinds share. Exp and Iat are whole
// seconds (NumericDate); finer times travel in private millisecond claims.
type registered struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat,omitempty"`
}

// The jwt.Claims methods. The parser runs without claims validation, so these
// exist to satisfy the interface; they still answer truthfully.

func (r *registered) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(r.Exp, 0)), nil
}

func (r *registered) GetIssuedAt() (*jwt.NumericDate, error) {
	if r.Iat == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(time.Unix(r.Iat, 0)), nil
}

func (r *registered) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (r *registered) GetIssuer() (string, error)              { return "", nil }
func (r *registered) GetSubject() (string, error)             { return "", nil }
func (r *registered) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{r.Aud}, nil
}

// check is the part of validation shared by both kinds; it runs only after the
// signature verified.
func (r *registered) check(room string) error {
	if r.Aud != room || room == "" {
		return errWrongRoom
	}
	if r.Exp <= 0 {
		return errMalformed
	}
	return nil
}

// ticketClaims is a Ticket on the wire. Field order and omitempty must match
// appendJSON; TestAppendJSONMatchesEncodingJSON holds them together.
type ticketClaims struct {
	registered
	Num int64 `json:"tkt,omitempty"`
	Ep  int64 `json:"ep,omitempty"`
	Jn  int64 `json:"jn,omitempty"` // Joined, Unix ms
	Lu  int64 `json:"lu,omitempty"` // LastUpdated, Unix ms
	Ahd int64 `json:"ahd,omitempty"`
	Wk  bool  `json:"wk,omitempty"`
	W25 int64 `json:"w25,omitempty"` // seconds
	W50 int64 `json:"w50,omitempty"`
	W75 int64 `json:"w75,omitempty"`

	Ah0 int64 `json:"ah0,omitempty"` // AheadAtEntry
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
	c.Iat = c.Lu / 1000 // the ticket is issued at its last update
	c.Num, c.Ep, c.Ahd, c.Wk = t.Number, t.Epoch, t.UsersAhead, t.WaitKnown
	c.W25, c.W50, c.W75 = waitSeconds(t.Wait25), waitSeconds(t.Wait50), waitSeconds(t.Wait75)
	c.Ah0 = t.AheadAtEntry
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
	}
	t.AheadAtEntry = c.Ah0
	return t
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
	b = appendInt(b, `,"ah0":`, c.Ah0)
	return append(b, '}')
}

// passClaims is a Pass on the wire; see ticketClaims.
type passClaims struct {
	registered
	Sid int64  `json:"sid,omitempty"`
	Ep  int64  `json:"ep,omitempty"`
	Is  int64  `json:"is,omitempty"` // Issued, Unix ms
	Rn  int64  `json:"rn,omitempty"` // RenewAt, Unix ms
	Scp string `json:"scp,omitempty"`
}

func (c *passClaims) from(p *Pass) error {
	var err error
	if err = checkText("pass", "Room", p.Room, true); err != nil {
		return err
	}
	if err = checkText("pass", "Scope", p.Scope, false); err != nil {
		return err
	}
	c.Aud, c.Scp = p.Room, p.Scope
	if c.Exp, err = seconds("pass", "Expires", p.Expires); err != nil {
		return err
	}
	if c.Is, err = millis("pass", "Issued", p.Issued); err != nil {
		return err
	}
	if c.Rn, err = millis("pass", "RenewAt", p.RenewAt); err != nil {
		return err
	}
	c.Iat = c.Is / 1000
	c.Sid, c.Ep = p.Session, p.Epoch
	return nil
}

func (c *passClaims) pass() Pass {
	return Pass{
		Room:    c.Aud,
		Session: c.Sid,
		Epoch:   c.Ep,
		Issued:  fromMillis(c.Is),
		Expires: time.Unix(c.Exp, 0).UTC(),
		RenewAt: fromMillis(c.Rn),
		Scope:   c.Scp,
	}
}

func (c *passClaims) appendJSON(b []byte) []byte {
	b = c.registered.appendJSON(b)
	b = appendInt(b, `,"sid":`, c.Sid)
	b = appendInt(b, `,"ep":`, c.Ep)
	b = appendInt(b, `,"is":`, c.Is)
	b = appendInt(b, `,"rn":`, c.Rn)
	if c.Scp != "" {
		b = appendString(append(b, `,"scp":`...), c.Scp)
	}
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
