package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 has a sub-second part on purpose: it shows which times keep milliseconds.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.UTC)

const room = "checkout"

func testKey(id string, fill byte) HMACKey {
	return HMACKey{ID: id, Secret: bytes.Repeat([]byte{fill}, 32)}
}

func newCodec(t testing.TB, keys []HMACKey, opts ...Option) *Codec {
	t.Helper()
	c, err := NewCodec(keys, opts...)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func edKey(fill byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{fill}, ed25519.SeedSize))
}

func esKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edSigner(t testing.TB, kid string, key ed25519.PrivateKey, more ...PublicKey) Signer {
	t.Helper()
	s, err := NewEd25519Signer(kid, key, more...)
	if err != nil {
		t.Fatalf("NewEd25519Signer: %v", err)
	}
	return s
}

func esSigner(t testing.TB, kid string, key *ecdsa.PrivateKey, more ...PublicKey) Signer {
	t.Helper()
	s, err := NewES256Signer(kid, key, more...)
	if err != nil {
		t.Fatalf("NewES256Signer: %v", err)
	}
	return s
}

func fullTicket() Ticket {
	return Ticket{
		Room:        room,
		Number:      1_234_567,
		Epoch:       1_741_964_000_123,
		Joined:      t0.Add(-17*time.Minute + 250*time.Millisecond),
		LastUpdated: t0,
		Expires:     t0.Add(2 * time.Minute),
		UsersAhead:  4_321,
		WaitKnown:   true,
		Wait25:      4 * time.Minute,
		Wait50:      6*time.Minute + 400*time.Millisecond, // rounds down to 6m
		Wait75:      9*time.Minute + 500*time.Millisecond, // rounds up to 9m1s
		NextPoll:    t0.Add(3*time.Second + 700*time.Millisecond),

		AheadAtEntry: 9_876,
	}
}

func fullPass() Pass {
	return Pass{
		Room:     room,
		Session:  987_654_321,
		Epoch:    3,
		Issued:   t0,
		Admitted: t0.Add(-time.Hour),
		Expires:  t0.Add(30 * time.Minute),
		RenewAt:  t0.Add(20*time.Minute + 123*time.Millisecond),
		Scope:    "",
	}
}

// wantTicket is t as it comes back from a token.
func wantTicket(t Ticket) Ticket {
	t.Joined = ms(t.Joined)
	t.LastUpdated = ms(t.LastUpdated)
	t.NextPoll = ms(t.NextPoll)
	t.Expires = t.Expires.Truncate(time.Second).UTC()
	t.Wait25 = t.Wait25.Round(time.Second)
	t.Wait50 = t.Wait50.Round(time.Second)
	t.Wait75 = t.Wait75.Round(time.Second)
	return t
}

func wantPass(p Pass) Pass {
	p.Issued = ms(p.Issued)
	p.Admitted = ms(p.Admitted)
	p.RenewAt = ms(p.RenewAt)
	p.Expires = p.Expires.Truncate(time.Second).UTC()
	return p
}

func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Millisecond).UTC()
}

// Structs holding time.Time compare with == only when locations and monotonic
// readings agree; comparing field by field with Equal is what we mean.
func sameTicket(a, b Ticket) bool {
	return a.Room == b.Room && a.Number == b.Number && a.Epoch == b.Epoch &&
		a.Joined.Equal(b.Joined) && a.LastUpdated.Equal(b.LastUpdated) && a.Expires.Equal(b.Expires) &&
		a.UsersAhead == b.UsersAhead && a.WaitKnown == b.WaitKnown &&
		a.Wait25 == b.Wait25 && a.Wait50 == b.Wait50 && a.Wait75 == b.Wait75 && a.AheadAtEntry == b.AheadAtEntry &&
		a.NextPoll.Equal(b.NextPoll)
}

func samePass(a, b Pass) bool {
	return a.Room == b.Room && a.Session == b.Session && a.Epoch == b.Epoch &&
		a.Issued.Equal(b.Issued) && a.Admitted.Equal(b.Admitted) && a.Expires.Equal(b.Expires) &&
		a.RenewAt.Equal(b.RenewAt) && a.Scope == b.Scope && a.Binding == b.Binding && a.Local == b.Local
}

func TestTicketRoundTrip(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)})
	tests := []struct {
		name string
		in   Ticket
	}{
		{"full", fullTicket()},
		{"minimal", Ticket{Room: room, Expires: t0}},
		{"no estimate", Ticket{Room: room, Number: 1, LastUpdated: t0, Expires: t0.Add(time.Minute)}},
		{"extremes", Ticket{Room: "r", Number: math.MaxInt64, Epoch: math.MinInt64, UsersAhead: math.MaxInt64,
			Joined: time.UnixMilli(1), LastUpdated: time.Unix(maxUnixSeconds, 999_000_000), Expires: time.Unix(maxUnixSeconds, 0)}},
		{"room needing escapes", Ticket{Room: "caf\u00e9 <\"q\">&\\\t\u2028", Expires: t0}},
		{"other time zone", Ticket{Room: room, Joined: t0.In(time.FixedZone("X", 5*3600)), Expires: t0.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := c.SignTicket(tt.in)
			if err != nil {
				t.Fatalf("SignTicket: %v", err)
			}
			want := wantTicket(tt.in)
			got, err := c.ParseTicket(tt.in.Room, s, want.Expires.Add(-time.Nanosecond))
			if err != nil {
				t.Fatalf("ParseTicket: %v", err)
			}
			if !sameTicket(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestTicketKeepsMilliseconds(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)})
	in := fullTicket()
	s, err := c.SignTicket(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ParseTicket(room, s, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUpdated.Nanosecond() != 535_000_000 || got.Joined.Nanosecond() != 785_000_000 {
		t.Errorf("LastUpdated %v, Joined %v: milliseconds lost", got.LastUpdated, got.Joined)
	}
	if got.Expires.Nanosecond() != 0 || !got.Expires.Before(in.Expires) {
		t.Errorf("Expires %v: want %v rounded down to the second", got.Expires, in.Expires)
	}
	if loc := got.LastUpdated.Location(); loc != time.UTC {
		t.Errorf("location %v, want UTC", loc)
	}
}

func TestPassRoundTrip(t *testing.T) {
	keys := []HMACKey{testKey("k1", 1)}
	codecs := []struct {
		name string
		c    *Codec
		alg  string
	}{
		{"HS256", newCodec(t, keys), "HS256"},
		{"EdDSA", newCodec(t, keys, WithPassSigner(edSigner(t, "ed1", edKey(7)))), "EdDSA"},
		{"ES256", newCodec(t, keys, WithPassSigner(esSigner(t, "es1", esKey(t)))), "ES256"},
	}
	passes := []struct {
		name string
		in   Pass
	}{
		{"full", fullPass()},
		{"minimal", Pass{Room: room, Expires: t0}},
		{"local", Pass{Room: room, Session: 12, Epoch: 3, Issued: t0, Admitted: t0, Expires: t0.Add(time.Hour), Local: true}},
		{"scoped", Pass{Room: room, Session: -5, Issued: t0, Expires: t0.Add(time.Hour), Scope: "event:2025/\"final\" <b>caf\u00e9</b>"}},
	}
	for _, cc := range codecs {
		for _, tt := range passes {
			t.Run(cc.name+"/"+tt.name, func(t *testing.T) {
				s, err := cc.c.SignPass(tt.in)
				if err != nil {
					t.Fatalf("SignPass: %v", err)
				}
				if h := header(t, s); h["alg"] != cc.alg || h["typ"] != typPass {
					t.Errorf("header %v, want alg %s typ %s", h, cc.alg, typPass)
				}
				want := wantPass(tt.in)
				got, err := cc.c.ParsePass(tt.in.Room, s, want.Expires.Add(-time.Nanosecond))
				if err != nil {
					t.Fatalf("ParsePass: %v", err)
				}
				if !samePass(got, want) {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

func TestTokenSize(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)}, WithPassSigner(edSigner(t, "ed1", edKey(7))))
	ticket, err := c.SignTicket(fullTicket())
	if err != nil {
		t.Fatal(err)
	}
	pass, err := c.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ticket %d bytes, EdDSA pass %d bytes", len(ticket), len(pass))
	if len(ticket) >= 400 {
		t.Errorf("ticket is %d bytes, want well under 400: %s", len(ticket), ticket)
	}
	if len(pass) >= 400 {
		t.Errorf("pass is %d bytes, want under 400: %s", len(pass), pass)
	}
}

func TestExpiry(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)})
	tk, err := c.SignTicket(fullTicket())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	tExp := fullTicket().Expires.Truncate(time.Second)
	pExp := fullPass().Expires.Truncate(time.Second)
	cases := []struct {
		name   string
		offset time.Duration // from Expires
		err    error
	}{
		{"well before", -time.Hour, nil},
		{"just before", -time.Nanosecond, nil},
		{"at expiry", 0, ErrExpired},
		{"after", time.Hour, ErrExpired},
	}
	for _, tt := range cases {
		t.Run("ticket/"+tt.name, func(t *testing.T) {
			got, err := c.ParseTicket(room, tk, tExp.Add(tt.offset))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			// Authentic but expired: the fields come back so the caller can
			// tell a lost place from a forgery.
			if !sameTicket(got, wantTicket(fullTicket())) {
				t.Errorf("got %+v", got)
			}
		})
		t.Run("pass/"+tt.name, func(t *testing.T) {
			got, err := c.ParsePass(room, ps, pExp.Add(tt.offset))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !samePass(got, wantPass(fullPass())) {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey("old", 1), testKey("new", 2)
	before := newCodec(t, []HMACKey{oldKey})
	during := newCodec(t, []HMACKey{newKey, oldKey})
	after := newCodec(t, []HMACKey{newKey})

	oldTicket, err := before.SignTicket(fullTicket())
	if err != nil {
		t.Fatal(err)
	}
	oldPass, err := before.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	newPass, err := during.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	if kid := header(t, newPass)["kid"]; kid != "new" {
		t.Errorf("during rotation signed with kid %v, want the first key", kid)
	}

	tests := []struct {
		name string
		c    *Codec
		tok  string
		pass bool
		err  error
	}{
		{"old ticket, old key second", during, oldTicket, false, nil},
		{"old pass, old key second", during, oldPass, true, nil},
		{"old ticket, old key removed", after, oldTicket, false, errUnknownKey},
		{"old pass, old key removed", after, oldPass, true, errUnknownKey},
		{"new pass after rotation", after, newPass, true, nil},
		{"new pass on old codec", before, newPass, true, errUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.pass {
				_, err = tt.c.ParsePass(room, tt.tok, t0)
			} else {
				_, err = tt.c.ParseTicket(room, tt.tok, t0)
			}
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestSignerRotation(t *testing.T) {
	keys := []HMACKey{testKey("k1", 1)}
	oldEd := edKey(7)
	before := newCodec(t, keys, WithPassSigner(edSigner(t, "ed-old", oldEd)))
	oldPass, err := before.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	// Move to ES256 and keep accepting the old Ed25519 key.
	during := newCodec(t, keys, WithPassSigner(esSigner(t, "es-new", esKey(t),
		PublicKey{ID: "ed-old", Key: oldEd.Public()})))
	after := newCodec(t, keys, WithPassSigner(esSigner(t, "es-new", esKey(t))))

	if _, err := during.ParsePass(room, oldPass, t0); err != nil {
		t.Errorf("old pass during rotation: %v", err)
	}
	if _, err := after.ParsePass(room, oldPass, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("old pass after rotation: err = %v, want ErrInvalid", err)
	}
	var set jwkSet
	if err := json.Unmarshal(during.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].Kid != "es-new" || set.Keys[1].Kid != "ed-old" {
		t.Errorf("JWKS during rotation = %s, want es-new then ed-old", during.JWKS())
	}
}

// craft builds a token by hand so tests control every byte.
func craft(t testing.TB, header, payload string, method jwt.SigningMethod, key any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if method == nil {
		return signing + "."
	}
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatalf("craft: %v", err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func header(t testing.TB, s string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// segment returns part i of s decoded, and replace puts it back encoded.
func segment(t testing.TB, s string, i int) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func replace(s string, i int, b []byte) string {
	parts := strings.Split(s, ".")
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestAttacks(t *testing.T) {
	secret := testKey("k1", 1)
	ed := edKey(7)
	c := newCodec(t, []HMACKey{secret}, WithPassSigner(edSigner(t, "ed1", ed)))
	hmacOnly := newCodec(t, []HMACKey{secret})
	otherSecret := newCodec(t, []HMACKey{testKey("k1", 9)})
	otherKid := newCodec(t, []HMACKey{testKey("k9", 1)})

	ticket, err := c.SignTicket(fullTicket())
	if err != nil {
		t.Fatal(err)
	}
	pass, err := c.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	hmacPass, err := hmacOnly.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c *Codec, p Pass) string {
		s, err := c.SignPass(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signTicket := func(tk Ticket) string {
		s, err := c.SignTicket(tk)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherRoomTicket := fullTicket()
	otherRoomTicket.Room = "elsewhere"
	otherRoomPass := fullPass()
	otherRoomPass.Room = "elsewhere"
	expired := fullPass()
	expired.Expires = t0.Add(-time.Hour)

	ticketKey := deriveKey(secret.Secret, ticketLabel)
	passKey := deriveKey(secret.Secret, passLabel)
	passJSON := string(segment(t, pass, 1))
	ticketJSON := string(segment(t, ticket, 1))
	hs := jwt.SigningMethodHS256
	passHeader := func(alg, kid string) string {
		return `{"alg":"` + alg + `","kid":"` + kid + `","typ":"wr-pass+jwt"}`
	}

	tamperedPayload := func() string {
		p := bytes.Replace(segment(t, pass, 1), []byte(`"sid":987654321`), []byte(`"sid":987654322`), 1)
		return replace(pass, 1, p)
	}
	tamperedSig := func() string {
		sig := segment(t, hmacPass, 2)
		sig[5] ^= 1
		return replace(hmacPass, 2, sig)
	}
	// The last base64 character of a 32-byte signature carries 2 bits of data
	// and 4 spare bits; setting a spare bit leaves the decoded bytes unchanged,
	// so only strict decoding tells this second spelling apart.
	spareBits := func() string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, hmacPass[len(hmacPass)-1])
		return hmacPass[:len(hmacPass)-1] + string(alphabet[last^1])
	}

	tests := []struct {
		name   string
		tok    string
		ticket bool // parse as a ticket rather than a pass
		err    error
	}{
		{"tampered payload", tamperedPayload(), false, errSignature},
		{"tampered signature", tamperedSig(), false, errSignature},
		{"spare base64 bits in signature", spareBits(), false, errMalformed},
		{"kid swapped to another valid key", replace(pass, 0, []byte(passHeader("EdDSA", "k1"))), false, ErrInvalid},
		{"alg none", craft(t, `{"alg":"none","kid":"k1","typ":"wr-pass+jwt"}`, passJSON, nil, nil), false, errSignature},
		{"alg none, ticket", craft(t, `{"alg":"none","kid":"k1","typ":"wr-ticket+jwt"}`, ticketJSON, nil, nil), true, errSignature},
		{"alg none, no typ", craft(t, `{"alg":"none"}`, passJSON, nil, nil), false, errSignature},
		{"alg NONE", craft(t, `{"alg":"NONE","kid":"k1","typ":"wr-pass+jwt"}`, passJSON, nil, nil), false, ErrInvalid},
		{"alg missing", craft(t, `{"kid":"k1","typ":"wr-pass+jwt"}`, passJSON, nil, nil), false, ErrInvalid},
		{"HS256 keyed with the EdDSA public key", craft(t, passHeader("HS256", "ed1"), passJSON, hs, []byte(ed.Public().(ed25519.PublicKey))), false, errUnknownKey},
		{"HS256 keyed with the EdDSA public key, HMAC kid", craft(t, passHeader("HS256", "k1"), passJSON, hs, []byte(ed.Public().(ed25519.PublicKey))), false, errSignature},
		{"EdDSA token naming an HMAC kid", craft(t, passHeader("EdDSA", "k1"), passJSON, jwt.SigningMethodEdDSA, ed), false, errUnknownKey},
		{"HS384 with the pass key", craft(t, passHeader("HS384", "k1"), passJSON, jwt.SigningMethodHS384, passKey), false, errSignature},
		{"HS512 ticket with the ticket key", craft(t, `{"alg":"HS512","kid":"k1","typ":"wr-ticket+jwt"}`, ticketJSON, jwt.SigningMethodHS512, ticketKey), true, errSignature},
		{"RS256 header", replace(hmacPass, 0, []byte(passHeader("RS256", "k1"))), false, errSignature},
		{"HS256 with the raw secret", craft(t, passHeader("HS256", "k1"), passJSON, hs, secret.Secret), false, errSignature},
		{"ticket as pass", ticket, false, errWrongType},
		{"pass as ticket", hmacPass, true, errWrongType},
		// Each defence alone: right type but the other kind's key, and the
		// other kind's type with the right key.
		{"pass type, ticket key", craft(t, passHeader("HS256", "k1"), passJSON, hs, ticketKey), false, errSignature},
		{"ticket type, ticket key, parsed as pass", craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-ticket+jwt"}`, passJSON, hs, passKey), false, errWrongType},
		{"ticket type, pass key", craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-ticket+jwt"}`, ticketJSON, hs, passKey), true, errSignature},
		{"pass type, ticket key, parsed as ticket", craft(t, passHeader("HS256", "k1"), ticketJSON, hs, ticketKey), true, errWrongType},
		{"typ missing", craft(t, `{"alg":"HS256","kid":"k1"}`, passJSON, hs, passKey), false, errWrongType},
		{"typ JWT", craft(t, `{"alg":"HS256","kid":"k1","typ":"JWT"}`, passJSON, hs, passKey), false, errWrongType},
		{"kid missing", craft(t, `{"alg":"HS256","typ":"wr-pass+jwt"}`, passJSON, hs, passKey), false, errUnknownKey},
		{"kid not a string", craft(t, `{"alg":"HS256","kid":1,"typ":"wr-pass+jwt"}`, passJSON, hs, passKey), false, errUnknownKey},
		{"other room", sign(c, otherRoomPass), false, errWrongRoom},
		{"other room, ticket", signTicket(otherRoomTicket), true, errWrongRoom},
		{"unknown kid", sign(otherKid, fullPass()), false, errUnknownKey},
		{"same kid, other secret", sign(otherSecret, fullPass()), false, errSignature},
		{"forged and expired", craft(t, passHeader("HS256", "k1"), string(segment(t, sign(c, expired), 1)), hs, deriveKey(testKey("k1", 9).Secret, passLabel)), false, errSignature},
		{"aud as array", craft(t, passHeader("HS256", "k1"), `{"aud":["checkout"],"exp":1999999999}`, hs, passKey), false, errMalformed},
		{"exp missing", craft(t, passHeader("HS256", "k1"), `{"aud":"checkout","sid":1}`, hs, passKey), false, errMalformed},
		{"exp fractional", craft(t, passHeader("HS256", "k1"), `{"aud":"checkout","exp":1999999999.5}`, hs, passKey), false, errMalformed},
		{"payload not an object", craft(t, passHeader("HS256", "k1"), `null`, hs, passKey), false, ErrInvalid},
		{"garbage", "not a token", false, errMalformed},
		{"empty", "", false, errMalformed},
		{"empty, ticket", "", true, errMalformed},
		{"dots", "..", false, errMalformed},
		{"four segments", hmacPass + ".x", false, errMalformed},
		{"truncated", hmacPass[:len(hmacPass)-5], false, ErrInvalid},
		{"signature cut off", hmacPass[:strings.LastIndexByte(hmacPass, '.')+1], false, errSignature},
		{"header only", hmacPass[:strings.IndexByte(hmacPass, '.')], false, errMalformed},
		{"padded base64", strings.Replace(hmacPass, ".", "=.", 1), false, errMalformed},
		{"MaxSize of garbage", strings.Repeat("a", MaxSize), false, errMalformed},
		{"oversized", strings.Repeat("a", MaxSize+1), false, ErrTooLarge},
		{"oversized, ticket", strings.Repeat("a.", MaxSize), true, ErrTooLarge},
		{"oversized valid-looking", hmacPass + strings.Repeat("A", MaxSize), false, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.ticket {
				var got Ticket
				got, err = c.ParseTicket(room, tt.tok, t0)
				if err != nil && !sameTicket(got, Ticket{}) {
					t.Errorf("rejected ticket has fields: %+v", got)
				}
			} else {
				var got Pass
				got, err = c.ParsePass(room, tt.tok, t0)
				if err != nil && !samePass(got, Pass{}) {
					t.Errorf("rejected pass has fields: %+v", got)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if errors.Is(tt.err, ErrInvalid) && errors.Is(err, ErrExpired) {
				t.Fatalf("err = %v: a forged token must not look merely expired", err)
			}
		})
	}
}

func TestSignRejectsGarbage(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)})
	ticket := func(f func(*Ticket)) Ticket { tk := fullTicket(); f(&tk); return tk }
	pass := func(f func(*Pass)) Pass { p := fullPass(); f(&p); return p }
	tickets := []struct {
		name string
		in   Ticket
		err  error
	}{
		{"empty room", ticket(func(t *Ticket) { t.Room = "" }), ErrInvalid},
		{"room not UTF-8", ticket(func(t *Ticket) { t.Room = "r\xff" }), ErrInvalid},
		{"no expiry", ticket(func(t *Ticket) { t.Expires = time.Time{} }), ErrInvalid},
		{"expiry before 1970", ticket(func(t *Ticket) { t.Expires = time.Unix(-5, 0) }), ErrInvalid},
		{"expiry at the epoch", ticket(func(t *Ticket) { t.Expires = time.Unix(0, 0) }), ErrInvalid},
		{"expiry after 9999", ticket(func(t *Ticket) { t.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), ErrInvalid},
		{"joined before 1970", ticket(func(t *Ticket) { t.Joined = time.Unix(-1, 0) }), ErrInvalid},
		{"joined at the epoch", ticket(func(t *Ticket) { t.Joined = time.Unix(0, 0) }), ErrInvalid},
		{"negative number", ticket(func(t *Ticket) { t.Number = -1 }), ErrInvalid},
		{"negative users ahead", ticket(func(t *Ticket) { t.UsersAhead = -1 }), ErrInvalid},
		{"negative users ahead at entry", ticket(func(t *Ticket) { t.AheadAtEntry = -1 }), ErrInvalid},
		{"negative wait", ticket(func(t *Ticket) { t.Wait75 = -time.Second }), ErrInvalid},
		{"huge room", ticket(func(t *Ticket) { t.Room = strings.Repeat("r", MaxSize) }), ErrTooLarge},
	}
	for _, tt := range tickets {
		t.Run("ticket/"+tt.name, func(t *testing.T) {
			if s, err := c.SignTicket(tt.in); !errors.Is(err, tt.err) || s != "" {
				t.Fatalf("SignTicket = %q, %v; want %v", s, err, tt.err)
			}
		})
	}
	passes := []struct {
		name string
		in   Pass
		err  error
	}{
		{"empty room", pass(func(p *Pass) { p.Room = "" }), ErrInvalid},
		{"no expiry", pass(func(p *Pass) { p.Expires = time.Time{} }), ErrInvalid},
		{"scope not UTF-8", pass(func(p *Pass) { p.Scope = "\xc3" }), ErrInvalid},
		{"renew before 1970", pass(func(p *Pass) { p.RenewAt = time.Unix(-100, 0) }), ErrInvalid},
		{"huge scope", pass(func(p *Pass) { p.Scope = strings.Repeat("s", MaxSize) }), ErrTooLarge},
	}
	for _, tt := range passes {
		t.Run("pass/"+tt.name, func(t *testing.T) {
			if s, err := c.SignPass(tt.in); !errors.Is(err, tt.err) || s != "" {
				t.Fatalf("SignPass = %q, %v; want %v", s, err, tt.err)
			}
		})
	}
}

func TestNewCodecErrors(t *testing.T) {
	good := testKey("k1", 1)
	tests := []struct {
		name string
		keys []HMACKey
		opts []Option
		err  error // nil: any error
	}{
		{"no keys", nil, nil, ErrNoKeys},
		{"short secret", []HMACKey{{ID: "k1", Secret: make([]byte, 31)}}, nil, ErrWeakKey},
		{"short second secret", []HMACKey{good, {ID: "k2", Secret: []byte("x")}}, nil, ErrWeakKey},
		{"empty id", []HMACKey{{Secret: good.Secret}}, nil, nil},
		{"long id", []HMACKey{{ID: strings.Repeat("k", 65), Secret: good.Secret}}, nil, nil},
		{"id with a colon", []HMACKey{{ID: "k:1", Secret: good.Secret}}, nil, nil},
		{"duplicate id", []HMACKey{good, testKey("k1", 2)}, nil, nil},
		{"nil signer", []HMACKey{good}, []Option{WithPassSigner(nil)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCodec(tt.keys, tt.opts...)
			if err == nil || c != nil {
				t.Fatalf("NewCodec = %v, %v; want an error", c, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestNewCodecCopiesNothingMutable(t *testing.T) {
	k := testKey("k1", 1)
	c := newCodec(t, []HMACKey{k})
	s, err := c.SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	k.Secret[0] ^= 0xff // the caller reuses its buffer
	if _, err := c.ParsePass(room, s, t0); err != nil {
		t.Fatalf("codec changed with the caller's secret: %v", err)
	}
}

func TestSignerErrors(t *testing.T) {
	ed := edKey(7)
	mismatched := append(ed25519.PrivateKey(nil), ed...)
	copy(mismatched[32:], edKey(8)[32:]) // public half of another key
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es := esKey(t)
	tests := []struct {
		name string
		f    func() (Signer, error)
	}{
		{"short Ed25519 key", func() (Signer, error) { return NewEd25519Signer("e", ed[:32]) }},
		{"Ed25519 halves disagree", func() (Signer, error) { return NewEd25519Signer("e", mismatched) }},
		{"bad kid", func() (Signer, error) { return NewEd25519Signer("e e", ed) }},
		{"empty kid", func() (Signer, error) { return NewES256Signer("", es) }},
		{"nil ECDSA key", func() (Signer, error) { return NewES256Signer("e", nil) }},
		{"P-384 key", func() (Signer, error) { return NewES256Signer("e", p384) }},
		{"more: P-384", func() (Signer, error) { return NewEd25519Signer("e", ed, PublicKey{ID: "o", Key: &p384.PublicKey}) }},
		{"more: short Ed25519", func() (Signer, error) {
			return NewEd25519Signer("e", ed, PublicKey{ID: "o", Key: ed25519.PublicKey(make([]byte, 31))})
		}},
		{"more: private key", func() (Signer, error) { return NewEd25519Signer("e", ed, PublicKey{ID: "o", Key: ed}) }},
		{"more: nil", func() (Signer, error) { return NewEd25519Signer("e", ed, PublicKey{ID: "o"}) }},
		{"more: nil ECDSA", func() (Signer, error) {
			return NewEd25519Signer("e", ed, PublicKey{ID: "o", Key: (*ecdsa.PublicKey)(nil)})
		}},
		{"more: duplicate of signing kid", func() (Signer, error) {
			return NewES256Signer("e", es, PublicKey{ID: "e", Key: ed.Public()})
		}},
		{"more: bad id", func() (Signer, error) { return NewES256Signer("e", es, PublicKey{ID: "", Key: ed.Public()}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := tt.f(); err == nil || s != nil {
				t.Fatalf("got %v, %v; want an error", s, err)
			}
		})
	}
}

// The hand-written encoder must produce exactly what encoding/json produces
// for the claim structs, so that any JWT library reads our claims as we do;
// FuzzClaims holds the hand-written reader to both.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"checkout", "", "caf\u00e9", `q"uote`, `back\slash`, "<html>&", "tab\t", "nul\x00", "\u2028\u2029", "\x7f", "emoji \U0001F600"}
	for _, s := range strs {
		t.Run(s, func(t *testing.T) {
			tcs := []ticketClaims{
				{registered: registered{Aud: s, Exp: 1}},
				{registered: registered{Aud: s, Exp: 2, Iat: 3}, Num: 4, Ep: -5, Jn: 6, Lu: 7, Ahd: 8, Wk: true, W25: 9, W50: 10, W75: math.MaxInt64, Np: 12, Ah0: 11},
			}
			for _, tc := range tcs {
				want, err := json.Marshal(tc)
				if err != nil {
					t.Fatal(err)
				}
				if got := tc.appendJSON(nil); !bytes.Equal(got, want) {
					t.Errorf("ticket:\n got %s\nwant %s", got, want)
				}
			}
			pcs := []passClaims{
				{registered: registered{Aud: s, Exp: 1}},
				{registered: registered{Aud: "r", Exp: 2, Iat: 3}, Sid: math.MinInt64, Ep: 4, Is: 5, Rn: 6, Scp: s},
			}
			for _, pc := range pcs {
				want, err := json.Marshal(pc)
				if err != nil {
					t.Fatal(err)
				}
				if got := pc.appendJSON(nil); !bytes.Equal(got, want) {
					t.Errorf("pass:\n got %s\nwant %s", got, want)
				}
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)}, WithPassSigner(edSigner(t, "ed1", edKey(7))))
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for j := range 50 {
				p := fullPass()
				p.Session = int64(i*1000 + j)
				var s string
				if s, err = c.SignPass(p); err != nil {
					break
				}
				var got Pass
				if got, err = c.ParsePass(room, s, t0); err != nil {
					break
				}
				if got.Session != p.Session {
					err = errors.New("session mixed up")
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestSecret(t *testing.T) {
	a, _ := NewCodec([]HMACKey{testKey("k1", 1), testKey("k0", 2)})
	b, _ := NewCodec([]HMACKey{testKey("k1", 1)})
	c, _ := NewCodec([]HMACKey{testKey("k2", 3)})
	if !bytes.Equal(a.Secret("x"), b.Secret("x")) {
		t.Error("codecs with the same signing key derive different secrets")
	}
	if bytes.Equal(a.Secret("x"), a.Secret("y")) || bytes.Equal(a.Secret("x"), c.Secret("x")) {
		t.Error("Secret ignores its purpose or the key")
	}
	if len(a.Secret("x")) != 32 {
		t.Errorf("Secret: %d bytes, want 32", len(a.Secret("x")))
	}
}

func TestLooksLikeTicket(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)})
	now := t0
	ticket, err := c.SignTicket(Ticket{Room: room, Number: 1, Joined: now, LastUpdated: now, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := c.SignPass(Pass{Room: room, Session: 1, Issued: now, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{ticket, true}, {pass, false}, {"", false}, {"junk", false}, {"!!!.x.y", false},
		{strings.Repeat("a", 1000) + ".x.y", false},
	} {
		if got := LooksLikeTicket(tc.s); got != tc.want {
			t.Errorf("LooksLikeTicket(%.40q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
