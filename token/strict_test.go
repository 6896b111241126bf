package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestOneSpelling takes every kind of token this package signs and respells it
// in ways a base64 decoder, a JSON decoder or a signature check would let
// through. Each spelling must be refused; only the original is accepted.
func TestOneSpelling(t *testing.T) {
	keys := []HMACKey{testKey("k1", 1)}
	es := newCodec(t, keys, WithPassSigner(esSigner(t, "es1", esKey(t))))
	tokens := map[string]struct {
		tok    string
		ticket bool
		c      *Codec
	}{}
	add := func(name string, c *Codec, ticket bool) {
		var s string
		var err error
		if ticket {
			s, err = c.SignTicket(fullTicket())
		} else {
			s, err = c.SignPass(fullPass())
		}
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = struct {
			tok    string
			ticket bool
			c      *Codec
		}{s, ticket, c}
	}
	add("HS256 ticket", newCodec(t, keys), true)
	add("HS256 pass", newCodec(t, keys), false)
	add("EdDSA pass", newCodec(t, keys, WithPassSigner(edSigner(t, "ed1", edKey(7)))), false)
	add("ES256 pass", es, false)

	for name, tk := range tokens {
		parse := func(s string) error {
			if tk.ticket {
				_, err := tk.c.ParseTicket(room, s, t0)
				return err
			}
			_, err := tk.c.ParsePass(room, s, t0)
			return err
		}
		t.Run(name, func(t *testing.T) {
			if err := parse(tk.tok); err != nil {
				t.Fatalf("the token itself: %v", err)
			}
			s := tk.tok
			dot1 := strings.IndexByte(s, '.')
			dot2 := strings.LastIndexByte(s, '.')
			insert := func(i int, x string) string { return s[:i] + x + s[i:] }
			variants := map[string]string{
				"LF after":                  s + "\n",
				"CRLF after":                s + "\r\n",
				"CR after":                  s + "\r",
				"LF before":                 "\n" + s,
				"space after":               s + " ",
				"tab after":                 s + "\t",
				"NUL after":                 s + "\x00",
				"CRLF in the signature":     insert(dot2+5, "\r\n"),
				"LF in the payload":         insert(dot1+5, "\n"),
				"LF in the header":          insert(5, "\n"),
				"padding on the header":     insert(dot1, "=="),
				"padding on the signature":  s + strings.Repeat("=", (4-(len(s)-dot2-1)%4)%4+4),
				"standard alphabet":         strings.NewReplacer("-", "+", "_", "/").Replace(s),
				"trailing dot":              s + ".",
				"spare bits in the payload": spareBit(s[:dot2]) + s[dot2:],
				"spare bits in the signature": func() string {
					return spareBit(s)
				}(),
			}
			for vn, v := range variants {
				if v == s {
					continue // e.g. a token with no '-' or '_' to swap
				}
				if err := parse(v); !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: err = %v, want ErrInvalid", vn, err)
				}
			}
			// Signing again gives the same bytes: one token per claims and key,
			// ES256 included (RFC 6979).
			var again string
			var err error
			if tk.ticket {
				again, err = tk.c.SignTicket(fullTicket())
			} else {
				again, err = tk.c.SignPass(fullPass())
			}
			if err != nil || again != s {
				t.Errorf("signing again gave %q, %v; want the same token", again, err)
			}
		})
	}

	t.Run("ES256 high S", func(t *testing.T) {
		s := tokens["ES256 pass"].tok
		dot := strings.LastIndexByte(s, '.')
		sig := segment(t, s, 2)
		n := elliptic.P256().Params().N
		r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if sv.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
			t.Fatalf("signed with the high S")
		}
		high := new(big.Int).Sub(n, sv)
		twin := make([]byte, 64)
		r.FillBytes(twin[:32])
		high.FillBytes(twin[32:])
		// The twin is a valid ECDSA signature: only our rule refuses it.
		pub := es.passes.keys[len(es.passes.keys)-1].ec
		h := sha256.Sum256([]byte(s[:dot]))
		if !ecdsa.Verify(pub, h[:], r, high) {
			t.Fatal("the high-S twin does not verify: the test proves nothing")
		}
		forged := s[:dot+1] + base64.RawURLEncoding.EncodeToString(twin)
		if _, err := es.ParsePass(room, forged, t0); !errors.Is(err, errSignature) {
			t.Errorf("high-S twin: err = %v, want %v", err, errSignature)
		}
		v, err := NewVerifier(es.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.ParsePass(room, forged, t0); !errors.Is(err, errSignature) {
			t.Errorf("Verifier, high-S twin: err = %v, want %v", err, errSignature)
		}
		if _, err := v.ParsePass(room, s, t0); err != nil {
			t.Errorf("Verifier, the pass itself: %v", err)
		}
	})

	t.Run("EdDSA S plus L", func(t *testing.T) {
		s := tokens["EdDSA pass"].tok
		dot := strings.LastIndexByte(s, '.')
		sig := segment(t, s, 2)
		// S is little-endian; S+L is the same scalar, written non-canonically.
		l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
		le := func(b []byte) []byte {
			out := make([]byte, len(b))
			for i := range b {
				out[len(b)-1-i] = b[i]
			}
			return out
		}
		sl := new(big.Int).Add(new(big.Int).SetBytes(le(sig[32:])), l)
		var be [32]byte
		sl.FillBytes(be[:])
		twin := append(append([]byte(nil), sig[:32]...), le(be[:])...)
		forged := s[:dot+1] + base64.RawURLEncoding.EncodeToString(twin)
		if _, err := tokens["EdDSA pass"].c.ParsePass(room, forged, t0); !errors.Is(err, errSignature) {
			t.Errorf("S+L: err = %v, want %v", err, errSignature)
		}
	})
}

// spareBit sets a spare bit of the last base64 character of s, when it has
// one, which leaves the decoded bytes unchanged.
func spareBit(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	seg := s[strings.LastIndexByte(s, '.')+1:]
	if len(seg)%4 == 0 {
		return s // no partial quantum, no spare bits
	}
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last^1])
}

// TestOneJSONSpelling signs payloads and headers that mean the same as ours,
// with the right key, so that only the spelling can refuse them.
func TestOneJSONSpelling(t *testing.T) {
	secret := testKey("k1", 1)
	c := newCodec(t, []HMACKey{secret})
	passKey := deriveKey(secret.Secret, passLabel)
	const hdr = `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`
	const ok = `{"aud":"checkout","exp":1999999999,"sid":7}`
	hs := jwt.SigningMethodHS256

	if _, err := c.ParsePass(room, craft(t, hdr, ok, hs, passKey), t0); err != nil {
		t.Fatalf("the canonical spelling: %v", err)
	}
	if p, err := c.ParsePass(room, craft(t, hdr, `{"aud":"checkout","exp":1999999999,"sid":7,"loc":1}`, hs, passKey), t0); err != nil || !p.Local {
		t.Fatalf("a local pass: %+v, %v", p, err)
	}
	payloads := map[string]string{
		"space":             `{"aud":"checkout", "exp":1999999999,"sid":7}`,
		"newline at end":    ok + "\n",
		"keys reordered":    `{"exp":1999999999,"aud":"checkout","sid":7}`,
		"duplicate key":     `{"aud":"checkout","exp":1999999999,"sid":7,"sid":7}`,
		"duplicate aud":     `{"aud":"checkout","aud":"checkout","exp":1999999999,"sid":7}`,
		"key in capitals":   `{"AUD":"checkout","exp":1999999999,"sid":7}`,
		"unknown claim":     `{"aud":"checkout","exp":1999999999,"sid":7,"x":1}`,
		"zero written":      `{"aud":"checkout","exp":1999999999,"iat":0,"sid":7}`,
		"empty scope":       `{"aud":"checkout","exp":1999999999,"sid":7,"scp":""}`,
		"leading zero":      `{"aud":"checkout","exp":1999999999,"sid":07}`,
		"plus sign":         `{"aud":"checkout","exp":1999999999,"sid":+7}`,
		"minus zero exp":    `{"aud":"checkout","exp":-0,"sid":7}`,
		"exponent":          `{"aud":"checkout","exp":1999999999,"sid":7e0}`,
		"fraction":          `{"aud":"checkout","exp":1999999999,"sid":7.0}`,
		"escaped letter":    `{"aud":"\u0063heckout","exp":1999999999,"sid":7}`,
		"escaped slash":     `{"aud":"checkout","exp":1999999999,"sid":7,"scp":"a\/b"}`,
		"unescaped <":       `{"aud":"checkout","exp":1999999999,"sid":7,"scp":"<b>"}`,
		"upper-case escape": `{"aud":"checkout","exp":1999999999,"sid":7,"scp":"\u003Cb\u003E"}`,
		"raw U+2028":        "{\"aud\":\"checkout\",\"exp\":1999999999,\"sid\":7,\"scp\":\"\u2028\"}",
		"invalid UTF-8":     "{\"aud\":\"checkout\",\"exp\":1999999999,\"sid\":7,\"scp\":\"\xff\"}",
		"BOM":               "\ufeff" + ok,
		"int64 overflow":    `{"aud":"checkout","exp":1999999999,"sid":9223372036854775808}`,
		"no exp":            `{"aud":"checkout","sid":7}`,
		"null aud":          `{"aud":null,"exp":1999999999,"sid":7}`,
		"two objects":       ok + ok,
		"local written 2":   `{"aud":"checkout","exp":1999999999,"sid":7,"loc":2}`,
		"local written 0":   `{"aud":"checkout","exp":1999999999,"sid":7,"loc":0}`,
		"local before scp":  `{"aud":"checkout","exp":1999999999,"sid":7,"loc":1,"scp":"a"}`,
	}
	for name, p := range payloads {
		if _, err := c.ParsePass(room, craft(t, hdr, p, hs, passKey), t0); !errors.Is(err, errMalformed) {
			t.Errorf("payload %s: err = %v, want %v", name, err, errMalformed)
		}
	}
	// The escapes encoding/json itself writes are the spelling, and read back.
	for _, scope := range []string{"<b>&", "caf\u00e9", "tab\t", "\u2028", `q"uote\`} {
		p := fullPass()
		p.Scope = scope
		s, err := c.SignPass(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.ParsePass(room, s, t0); err != nil || got.Scope != scope {
			t.Errorf("scope %q came back as %q, %v", scope, got.Scope, err)
		}
	}

	headers := map[string]string{
		"reordered":     `{"kid":"k1","alg":"HS256","typ":"wr-pass+jwt"}`,
		"space":         `{"alg":"HS256", "kid":"k1","typ":"wr-pass+jwt"}`,
		"extra field":   `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt","x":1}`,
		"duplicate alg": `{"alg":"HS256","alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`,
		"escaped plus":  `{"alg":"HS256","kid":"k1","typ":"wr-pass\u002bjwt"}`,
	}
	for name, h := range headers {
		if _, err := c.ParsePass(room, craft(t, h, ok, hs, passKey), t0); !errors.Is(err, errMalformed) {
			t.Errorf("header %s: err = %v, want %v", name, err, errMalformed)
		}
	}
}
