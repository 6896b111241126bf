package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fetchVerifier builds a Verifier the way another service would: over HTTP.
func fetchVerifier(t *testing.T, c *Codec) *Verifier {
	t.Helper()
	srv := httptest.NewServer(c.JWKSHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=300") {
		t.Errorf("Cache-Control %q, want max-age=300", cc)
	}
	if !bytes.Equal(body, c.JWKS()) {
		t.Errorf("served %s, JWKS() is %s", body, c.JWKS())
	}
	v, err := NewVerifier(body)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifierFromJWKS(t *testing.T) {
	keys := []HMACKey{testKey("k1", 1)}
	hmacPass, err := newCodec(t, keys).SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		signer Signer
	}{
		{"EdDSA", edSigner(t, "ed1", edKey(7))},
		{"ES256", esSigner(t, "es1", esKey(t))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCodec(t, keys, WithPassSigner(tt.signer))
			v := fetchVerifier(t, c)
			pass, err := c.SignPass(fullPass())
			if err != nil {
				t.Fatal(err)
			}
			ticket, err := c.SignTicket(fullTicket())
			if err != nil {
				t.Fatal(err)
			}

			got, err := v.ParsePass(room, pass, t0)
			if err != nil {
				t.Fatalf("ParsePass: %v", err)
			}
			if !samePass(got, wantPass(fullPass())) {
				t.Errorf("got %+v", got)
			}
			rejects := []struct {
				name string
				room string
				tok  string
				now  time.Time
				err  error
			}{
				{"HMAC pass", room, hmacPass, t0, errSignature},
				{"ticket", room, ticket, t0, ErrInvalid},
				{"other room", "elsewhere", pass, t0, errWrongRoom},
				{"expired", room, pass, t0.Add(time.Hour), ErrExpired},
				{"garbage", room, "x.y.z", t0, errMalformed},
				{"oversized", room, pass + strings.Repeat("A", MaxSize), t0, ErrTooLarge},
			}
			for _, r := range rejects {
				t.Run(r.name, func(t *testing.T) {
					if _, err := v.ParsePass(r.room, r.tok, r.now); !errors.Is(err, r.err) {
						t.Fatalf("err = %v, want %v", err, r.err)
					}
				})
			}
		})
	}
}

func TestVerifierAfterSignerRotation(t *testing.T) {
	keys := []HMACKey{testKey("k1", 1)}
	oldEd := edKey(7)
	oldPass, err := newCodec(t, keys, WithPassSigner(edSigner(t, "ed-old", oldEd))).SignPass(fullPass())
	if err != nil {
		t.Fatal(err)
	}
	during := newCodec(t, keys, WithPassSigner(esSigner(t, "es-new", esKey(t), PublicKey{ID: "ed-old", Key: oldEd.Public()})))
	if _, err := fetchVerifier(t, during).ParsePass(room, oldPass, t0); err != nil {
		t.Errorf("old pass with the old key still published: %v", err)
	}
	after := newCodec(t, keys, WithPassSigner(esSigner(t, "es-new", esKey(t))))
	if _, err := fetchVerifier(t, after).ParsePass(room, oldPass, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("old pass after the old key was dropped: err = %v, want ErrInvalid", err)
	}
}

func TestJWKSHandlerMethods(t *testing.T) {
	c := newCodec(t, []HMACKey{testKey("k1", 1)}, WithPassSigner(edSigner(t, "ed1", edKey(7))))
	h := c.JWKSHandler()
	tests := []struct {
		method string
		status int
		body   bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, "/.well-known/jwks.json", nil))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if got := bytes.Equal(w.Body.Bytes(), c.JWKS()); got != tt.body {
				t.Errorf("body %q", w.Body)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	hmacCodec := newCodec(t, []HMACKey{testKey("k1", 1)})
	if got := string(hmacCodec.JWKS()); got != `{"keys":[]}` {
		t.Errorf("HMAC codec JWKS = %s", got)
	}
	if _, err := NewVerifier(hmacCodec.JWKS()); !errors.Is(err, ErrNoKeys) {
		t.Errorf("Verifier from an empty set: err = %v, want ErrNoKeys", err)
	}

	c := newCodec(t, []HMACKey{testKey("k1", 1)}, WithPassSigner(esSigner(t, "es1", esKey(t), PublicKey{ID: "ed0", Key: edKey(7).Public()})))
	b := c.JWKS()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS = %s, want 2 keys", b)
	}
	for i, want := range []map[string]string{
		{"kty": "EC", "crv": "P-256", "kid": "es1", "alg": "ES256", "use": "sig"},
		{"kty": "OKP", "crv": "Ed25519", "kid": "ed0", "alg": "EdDSA", "use": "sig"},
	} {
		for k, v := range want {
			if set.Keys[i][k] != v {
				t.Errorf("key %d: %s = %q, want %q", i, k, set.Keys[i][k], v)
			}
		}
		if _, private := set.Keys[i]["d"]; private {
			t.Errorf("key %d publishes its private part", i)
		}
	}
	b[0] = 'X'
	if c.JWKS()[0] != '{' {
		t.Error("JWKS returned the codec's own buffer")
	}
}

func TestNewVerifierErrors(t *testing.T) {
	const edX = "6gqJtUQGmWg_aDxQz9NBEbqTu5qzeAbi2HVdVNFHv9g" // any 32 bytes parse as an Ed25519 key
	tests := []struct {
		name string
		jwks string
		err  error // nil: any error
	}{
		{"not JSON", `{"keys":`, nil},
		{"keys not an array", `{"keys":{}}`, nil},
		{"empty", `{"keys":[]}`, ErrNoKeys},
		{"null", `null`, ErrNoKeys},
		{"only RSA", `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`, ErrNoKeys},
		{"only encryption keys", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"` + edX + `"}]}`, ErrNoKeys},
		{"no kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + edX + `"}]}`, ErrNoKeys},
		{"other alg", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","alg":"HS256","x":"` + edX + `"}]}`, ErrNoKeys},
		{"short Ed25519 x", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"AAAA"}]}`, nil},
		{"Ed25519 x not base64url", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"` + edX[:40] + `+/="}]}`, nil},
		{"P-256 point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","kid":"p","x":"` + strings.Repeat("A", 42) + `E","y":"` + strings.Repeat("A", 42) + `E"}]}`, nil},
		{"P-256 without y", `{"keys":[{"kty":"EC","crv":"P-256","kid":"p","x":"` + strings.Repeat("A", 43) + `"}]}`, nil},
		{"duplicate kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","x":"` + edX + `"},{"kty":"OKP","crv":"Ed25519","kid":"e","x":"` + edX + `"}]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier([]byte(tt.jwks))
			if err == nil || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want an error", v, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
	// A set shared with other keys still works for the ones we use.
	mixed := `{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"e","x":"` + edX + `"}]}`
	if _, err := NewVerifier([]byte(mixed)); err != nil {
		t.Errorf("mixed set: %v", err)
	}
}
