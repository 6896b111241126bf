package token

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParse feeds arbitrary strings to every parse function. None may panic,
// return an error outside the package's sentinels, or accept anything but the
// exact tokens we signed: with strict base64 each token has one spelling.
func FuzzParse(f *testing.F) {
	secret := testKey("k1", 1)
	c := newCodec(f, []HMACKey{secret}, WithPassSigner(edSigner(f, "ed1", edKey(7))))
	hmacCodec := newCodec(f, []HMACKey{secret})
	v, err := NewVerifier(c.JWKS())
	if err != nil {
		f.Fatal(err)
	}
	ticket, err := c.SignTicket(fullTicket())
	if err != nil {
		f.Fatal(err)
	}
	edPass, err := c.SignPass(fullPass())
	if err != nil {
		f.Fatal(err)
	}
	hmacPass, err := hmacCodec.SignPass(fullPass())
	if err != nil {
		f.Fatal(err)
	}
	validTicket := map[string]bool{ticket: true}
	validPass := map[string]bool{edPass: true, hmacPass: true} // c accepts HMAC passes too
	validVerifier := map[string]bool{edPass: true}

	for _, s := range []string{
		ticket, edPass, hmacPass, "", ".", "..", "a.b.c", "not a token",
		craft(f, `{"alg":"none","kid":"k1","typ":"wr-pass+jwt"}`, string(segment(f, hmacPass, 1)), nil, nil),
		craft(f, `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`, `{"aud":"checkout","exp":1e400}`, jwt.SigningMethodHS256, []byte("x")),
		strings.Repeat("A", MaxSize+1),
	} {
		f.Add(s)
	}

	now := t0
	check := func(t *testing.T, what, s string, err error, valid map[string]bool) {
		switch {
		case err == nil || errors.Is(err, ErrExpired):
			if !valid[s] {
				t.Fatalf("%s accepted a token we never signed (err %v): %q", what, err, s)
			}
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrTooLarge):
		default:
			t.Fatalf("%s: unexpected error %v", what, err)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := c.ParseTicket(room, s, now)
		check(t, "ParseTicket", s, err, validTicket)
		_, err = c.ParsePass(room, s, now)
		check(t, "ParsePass", s, err, validPass)
		_, err = v.ParsePass(room, s, now)
		check(t, "Verifier.ParsePass", s, err, validVerifier)
	})
}
