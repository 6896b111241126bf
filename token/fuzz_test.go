package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParse feeds arbitrary strings to every parse function. None may panic,
// return an error outside the package's sentinels, or accept anything but the
// exact tokens we signed. Every accepted token must also be the one spelling
// of its claims: signing what it parsed to gives back the same bytes, so no
// other byte string with the same claims can be accepted (HMAC, EdDSA and our
// ES256 are deterministic).
func FuzzParse(f *testing.F) {
	secret := testKey("k1", 1)
	ed := newCodec(f, []HMACKey{secret}, WithPassSigner(edSigner(f, "ed1", edKey(7))))
	es := newCodec(f, []HMACKey{secret}, WithPassSigner(esSigner(f, "es1", fixedESKey(f))))
	hmacCodec := newCodec(f, []HMACKey{secret})
	v, err := NewVerifier(ed.JWKS())
	if err != nil {
		f.Fatal(err)
	}
	sign := func(c *Codec) string {
		s, err := c.SignPass(fullPass())
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	ticket, err := ed.SignTicket(fullTicket())
	if err != nil {
		f.Fatal(err)
	}
	edPass, esPass, hmacPass := sign(ed), sign(es), sign(hmacCodec)
	validTicket := map[string]bool{ticket: true}
	validEd := map[string]bool{edPass: true, hmacPass: true} // a codec accepts HMAC passes too
	validES := map[string]bool{esPass: true, hmacPass: true}
	validVerifier := map[string]bool{edPass: true}

	for _, s := range []string{
		ticket, edPass, esPass, hmacPass, "", ".", "..", "a.b.c", "not a token",
		ticket + "\n", edPass + "\r\n", esPass + "=", " " + hmacPass, hmacPass + ".",
		strings.Replace(hmacPass, ".", ".\n", 2),
		craft(f, `{"alg":"none","kid":"k1","typ":"wr-pass+jwt"}`, string(segment(f, hmacPass, 1)), nil, nil),
		craft(f, `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`, `{"aud":"checkout","exp":1e400}`, jwt.SigningMethodHS256, []byte("x")),
		strings.Repeat("A", MaxSize+1),
	} {
		f.Add(s)
	}

	now := t0
	accepted := func(t *testing.T, what, s string, err error, valid map[string]bool) bool {
		switch {
		case err == nil || errors.Is(err, ErrExpired):
			if !valid[s] {
				t.Fatalf("%s accepted a token we never signed (err %v): %q", what, err, s)
			}
			return true
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrTooLarge):
			return false
		default:
			t.Fatalf("%s: unexpected error %v", what, err)
			return false
		}
	}
	resigned := func(t *testing.T, what, s string, p Pass, signers ...*Codec) {
		for _, c := range signers {
			if again, err := c.SignPass(p); err == nil && again == s {
				return
			}
		}
		t.Fatalf("%s accepted %q, which is not how its claims are signed", what, s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tk, err := ed.ParseTicket(room, s, now); accepted(t, "ParseTicket", s, err, validTicket) {
			if again, err := ed.SignTicket(tk); err != nil || again != s {
				t.Fatalf("ParseTicket accepted %q, which signs as %q", s, again)
			}
		}
		if p, err := ed.ParsePass(room, s, now); accepted(t, "ParsePass (EdDSA codec)", s, err, validEd) {
			resigned(t, "ParsePass (EdDSA codec)", s, p, ed, hmacCodec)
		}
		if p, err := es.ParsePass(room, s, now); accepted(t, "ParsePass (ES256 codec)", s, err, validES) {
			resigned(t, "ParsePass (ES256 codec)", s, p, es, hmacCodec)
		}
		if p, err := v.ParsePass(room, s, now); accepted(t, "Verifier.ParsePass", s, err, validVerifier) {
			resigned(t, "Verifier.ParsePass", s, p, ed)
		}
	})
}

// fixedESKey is a P-256 key that is the same on every run, so that the fuzz
// corpus stays meaningful.
func fixedESKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzClaims holds the claim reader to encoding/json and to appendJSON: it
// accepts a payload exactly when encoding/json decodes it to claims that
// appendJSON writes back byte for byte, and then it agrees with encoding/json.
func FuzzClaims(f *testing.F) {
	var pc passClaims
	if err := pc.from(&Pass{Room: room, Session: -1, Epoch: 1 << 62, Issued: t0, Expires: t0.Add(1), RenewAt: t0, Scope: "<caf\u00e9>\u2028\"\\"}); err != nil {
		f.Fatal(err)
	}
	var tc ticketClaims
	if err := tc.from(ptr(fullTicket())); err != nil {
		f.Fatal(err)
	}
	for _, b := range [][]byte{
		pc.appendJSON(nil), tc.appendJSON(nil),
		[]byte(`{"aud":"checkout","exp":1}`), []byte(`{"aud":"checkout","exp":1,"wk":true}`),
		[]byte(`{"aud":"checkout","exp":9223372036854775807,"sid":-9223372036854775808}`),
		[]byte(`{"aud":"checkout","exp":1,"scp":"\u00e9"}`), []byte(`{"aud":"checkout","exp":1,"scp":"\u003c"}`),
		[]byte(`{"aud":"checkout", "exp":1}`), []byte(`{"aud":"checkout","exp":01}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got, std passClaims
		err := got.parse(b, room)
		canonical := json.Unmarshal(b, &std) == nil && std.Aud == room && std.Exp > 0 && bytes.Equal(std.appendJSON(nil), b)
		switch {
		case err == nil && !canonical:
			t.Fatalf("pass: accepted %q, which appendJSON does not write", b)
		case err == nil && got != std:
			t.Fatalf("pass: read %q as %+v, encoding/json as %+v", b, got, std)
		case err != nil && canonical:
			t.Fatalf("pass: refused %q, which appendJSON writes: %v", b, err)
		}

		var gotT, stdT ticketClaims
		err = gotT.parse(b, room)
		canonical = json.Unmarshal(b, &stdT) == nil && stdT.Aud == room && stdT.Exp > 0 && bytes.Equal(stdT.appendJSON(nil), b)
		switch {
		case err == nil && !canonical:
			t.Fatalf("ticket: accepted %q, which appendJSON does not write", b)
		case err == nil && gotT != stdT:
			t.Fatalf("ticket: read %q as %+v, encoding/json as %+v", b, gotT, stdT)
		case err != nil && canonical:
			t.Fatalf("ticket: refused %q, which appendJSON writes: %v", b, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
