package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestNothingPrintsSecrets builds keys from known secrets, drives every error
// path of the package with inputs full of them, prints every exported value
// under every fmt verb, through both slog handlers and encoding/json, and
// looks for the secrets, their encodings and the keys derived from them in
// all that output.
func TestNothingPrintsSecrets(t *testing.T) {
	sum := sha256.Sum256([]byte("waitingroom: a secret nothing may print"))
	secret := sum[:]
	edPriv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5c}, 32))
	esPriv := fixedESKey(t)
	esD, err := esPriv.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	material := map[string][]byte{
		"secret":        secret,
		"ticket key":    deriveKey(secret, ticketLabel),
		"pass key":      deriveKey(secret, passLabel),
		"Secret root":   deriveKey(secret, secretLabel),
		"Ed25519 seed":  edPriv.Seed(), // the rest of an ed25519.PrivateKey is its public key
		"ES256 private": esD,
	}
	find := newNeedles(material)

	// The detector must see what it looks for, or the rest proves nothing.
	key := HMACKey{ID: "k1", Secret: secret}
	for _, s := range []string{FormatKeys(key), fmt.Sprint(secret), fmt.Sprintf("%x", edPriv.Seed()), string(esD[3:13]),
		hex.EncodeToString(deriveKey(secret, passLabel))[20:40]} {
		if find(s) == "" {
			t.Fatalf("the detector misses %q", s)
		}
	}

	var out []printed
	add := func(what, s string) { out = append(out, printed{what, s}) }
	errs := map[string]error{} // printed below with the other values
	addErr := func(what string, err error) {
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		errs[fmt.Sprintf("%s (%d)", what, len(errs))] = err
	}

	// Every spelling of the secret ParseKeys reads, in every wrong place.
	encodings := map[string]string{
		"std":    base64.StdEncoding.EncodeToString(secret),
		"rawstd": base64.RawStdEncoding.EncodeToString(secret),
		"url":    base64.URLEncoding.EncodeToString(secret),
		"rawurl": base64.RawURLEncoding.EncodeToString(secret),
	}
	for name, e := range encodings {
		for _, in := range []string{
			e + ":k1", e + ":" + e, " " + e + " : k1 ", e + ":k1,k2:" + e, "k1:" + e + "," + e + ":k2",
			"k1:" + e + "!", "k1:" + e[:len(e)-3], "k1:" + e[:20], "k1:" + e + ",k1:" + e, e + "," + e,
			":" + e, "a b:" + e, e + ":", "k1:" + e + "," + e, "k1:" + e + "\x00", "k1:" + spareBit(strings.TrimRight(e, "=")),
			e[:20], e + e + e, strings.Repeat("x", 65) + ":" + e,
		} {
			keys, err := ParseKeys(in)
			if err == nil {
				t.Errorf("ParseKeys(%s) = %v, want an error", name, keys)
				continue
			}
			addErr("ParseKeys "+name, err)
		}
		if _, err := GenerateKey(e); err != nil || strings.ContainsAny(e, "+/=") {
			addErr("GenerateKey "+name, err) // only a URL-base64 ID is a valid one
		}
		for _, keys := range [][]HMACKey{
			{{ID: e, Secret: []byte("k1")}},
			{{ID: "k1", Secret: secret[:31]}},
			{{ID: "k1", Secret: secret}, {ID: "k1", Secret: secret}},
			{{ID: "k1", Secret: secret}, {ID: e, Secret: secret}},
			{{ID: "k1", Secret: secret}, {ID: "k2", Secret: []byte(e)[:20]}},
			{{ID: strings.TrimRight(e, "="), Secret: secret}},
		} {
			_, err := NewCodec(keys)
			addErr("NewCodec "+name, err)
		}
	}
	_, err = NewCodec([]HMACKey{key}, WithPassSigner(nil))
	addErr("NewCodec nil signer", err)
	_, err = NewCodec(nil)
	addErr("NewCodec no keys", err)

	// Signers with broken private keys.
	mixed := append(append(ed25519.PrivateKey(nil), edPriv[:32]...), edKey(1)[32:]...)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for what, f := range map[string]func() (Signer, error){
		"short Ed25519":      func() (Signer, error) { return NewEd25519Signer("e", edPriv[:40]) },
		"Ed25519 mismatched": func() (Signer, error) { return NewEd25519Signer("e", mixed) },
		"Ed25519 bad kid":    func() (Signer, error) { return NewEd25519Signer(encodings["rawurl"]+"!", edPriv) },
		"private as public":  func() (Signer, error) { return NewEd25519Signer("e", edPriv, PublicKey{ID: "o", Key: edPriv}) },
		"ECDSA as public":    func() (Signer, error) { return NewES256Signer("e", esPriv, PublicKey{ID: "o", Key: esPriv}) },
		"short public": func() (Signer, error) {
			return NewES256Signer("e", esPriv, PublicKey{ID: "o", Key: ed25519.PublicKey(edPriv[:31])})
		},
		"P-384": func() (Signer, error) { return NewES256Signer("e", p384) },
		"duplicate kid": func() (Signer, error) {
			return NewES256Signer("e", esPriv, PublicKey{ID: "e", Key: edPriv.Public()})
		},
	} {
		_, err := f()
		addErr("signer "+what, err)
	}

	edSigner, err := NewEd25519Signer("ed1", edPriv)
	if err != nil {
		t.Fatal(err)
	}
	esSigner, err := NewES256Signer("es1", esPriv, PublicKey{ID: "ed1", Key: edPriv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	hmacCodec := newCodec(t, []HMACKey{key, {ID: "k0", Secret: deriveKey(secret, "old")}})
	edCodec := newCodec(t, []HMACKey{key}, WithPassSigner(edSigner))
	esCodec := newCodec(t, []HMACKey{key}, WithPassSigner(esSigner))
	verifier, err := NewVerifier(esCodec.JWKS())
	if err != nil {
		t.Fatal(err)
	}

	// Key sets that carry the secrets where public keys should be.
	rawurl := encodings["rawurl"]
	for _, doc := range []string{
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"` + rawurl + `!"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"` + base64.RawURLEncoding.EncodeToString(edPriv) + `"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"` + rawurl + `","y":"` + rawurl + `"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","d":"` + rawurl + `"}]}`,
		`{"keys":[{"kty":"oct","kid":"k","k":"` + rawurl + `"}]}`,
		`{"keys":` + rawurl + `}`, `{"keys":[{"kty":` + hex.EncodeToString(secret) + `}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":` + fmt.Sprint(secret) + `}]}`,
	} {
		_, err := NewVerifier([]byte(doc))
		addErr("NewVerifier", err)
	}

	// Tokens: forged ones made of the secrets, and real ones.
	ticketKey, passKey := deriveKey(secret, ticketLabel), deriveKey(secret, passLabel)
	var tokens []string
	for _, c := range []*Codec{hmacCodec, edCodec, esCodec} {
		tk, err := c.SignTicket(fullTicket())
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.SignPass(fullPass())
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tk, p)
		add("ticket", tk)
		add("pass", p)
	}
	for _, tok := range append(tokens,
		rawurl, rawurl+"."+rawurl+"."+rawurl, string(secret),
		craft(t, `{"alg":"HS256","kid":"`+rawurl+`","typ":"wr-pass+jwt"}`, `{"aud":"checkout","exp":1999999999}`, jwt.SigningMethodHS256, passKey),
		craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`, `{"aud":"`+rawurl+`","exp":1999999999}`, jwt.SigningMethodHS256, passKey),
		craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`, `{"aud":"checkout","exp":"`+rawurl+`"}`, jwt.SigningMethodHS256, passKey),
		craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-ticket+jwt"}`, `{"aud":"checkout","exp":1}`, jwt.SigningMethodHS256, ticketKey),
		craft(t, `{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`, `{"aud":"checkout","exp":1999999999}`, jwt.SigningMethodHS256, secret),
		tokens[0]+rawurl, strings.Repeat(rawurl, 100),
	) {
		for _, c := range []*Codec{hmacCodec, edCodec, esCodec} {
			if _, err := c.ParseTicket(room, tok, t0); err != nil {
				addErr("ParseTicket", err)
			}
			if _, err := c.ParsePass(room, tok, t0); err != nil {
				addErr("ParsePass", err)
			}
			if _, err := c.ParsePass(rawurl, tok, t0); err != nil {
				addErr("ParsePass", err)
			}
		}
		if _, err := verifier.ParsePass(room, tok, t0); err != nil {
			addErr("Verifier.ParsePass", err)
		}
	}
	for _, c := range []*Codec{hmacCodec, edCodec, esCodec} {
		_, err := c.SignTicket(Ticket{Room: string(secret), Expires: t0})
		addErr("SignTicket", err)
		_, err = c.SignTicket(Ticket{Room: rawurl, Expires: t0, Number: -1})
		addErr("SignTicket", err)
		_, err = c.SignPass(Pass{Room: room, Expires: t0, Scope: strings.Repeat(rawurl, 100)})
		addErr("SignPass", err)
		_, err = c.SignPass(Pass{Room: room, Expires: t0, Scope: string(secret)})
		addErr("SignPass", err)
		add("JWKS", string(c.JWKS()))
		rec := httptest.NewRecorder()
		c.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
		add("JWKSHandler", rec.Body.String())
	}

	// Every exported value, printed every way.
	swapped := HMACKey{ID: rawurl, Secret: []byte("k1")}
	type config struct {
		Key   HMACKey
		Keys  []HMACKey
		ByID  map[string]HMACKey
		Ptr   *HMACKey
		Codec *Codec
	}
	values := map[string]any{
		"HMACKey":         key,
		"*HMACKey":        &key,
		"swapped HMACKey": swapped,
		"[]HMACKey":       []HMACKey{key, swapped},
		"config":          config{key, []HMACKey{key}, map[string]HMACKey{"k1": key}, &key, esCodec},
		"*config":         &config{key, []HMACKey{key}, map[string]HMACKey{"k1": key}, &key, edCodec},
		"HMAC Codec":      hmacCodec,
		"Ed Codec":        edCodec,
		"ES Codec":        esCodec,
		"Codec value":     *esCodec,
		"Ed Signer":       edSigner,
		"ES Signer":       esSigner,
		"Option":          WithPassSigner(edSigner),
		"Verifier":        verifier,
		"PublicKey":       PublicKey{ID: "ed1", Key: edPriv.Public()},
		"Ticket":          fullTicket(),
		"Pass":            fullPass(),
	}
	for what, err := range errs {
		add(what, err.Error())
		values[what] = err
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%20.5v", "%-8s|", "% x", "%#x"}
	for name, v := range values {
		for _, verb := range verbs {
			add(name+" "+verb, fmt.Sprintf(verb, v))
		}
		// %p of a value is fmt's own error path, which prints fields without
		// asking the value (vet reports it); pointers print an address.
		if name[0] == '*' || strings.HasSuffix(name, "Codec") && name != "Codec value" {
			add(name+" %p", fmt.Sprintf("%p", v))
		}
		add(name+" Sprint", fmt.Sprint(v))
		add(name+" Sprintln", fmt.Sprintln(v, v))
		if b, err := json.Marshal(v); err == nil {
			add(name+" json", string(b))
		}
	}
	var text, js bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewTextHandler(&text, &slog.HandlerOptions{AddSource: true}),
		slog.NewJSONHandler(&js, nil),
	} {
		log := slog.New(h)
		for name, v := range values {
			log.Info(name, "v", v, slog.Any("any", v), slog.Group("g", "v", v))
			if err, ok := v.(error); ok {
				log.Error(name, "err", err)
			}
		}
		log.With("key", key, "codec", esCodec).Info("with")
	}
	add("slog text", text.String())
	add("slog JSON", js.String())

	for _, o := range out {
		if what := find(o.s); what != "" {
			t.Errorf("%s prints %s: %.200q", o.what, what, o.s)
		}
	}
	if !strings.Contains(fmt.Sprint(esCodec), "es1") || !strings.Contains(text.String(), "k1") {
		t.Errorf("printing names no key: %v", esCodec)
	}
}

type printed struct{ what, s string }

// newNeedles returns a function that names the piece of material whose
// encoding (raw, base64 in any alphabet and alignment, hex, fmt's lists) s
// contains, in part: any stretch of an encoding that spells about 8 bytes.
func newNeedles(material map[string][]byte) func(s string) string {
	type needle struct {
		what, text string
		window     int
	}
	var needles []needle
	for what, b := range material {
		// Windows span about 8 bytes of material, too many to match by chance.
		for _, f := range []struct {
			form, text string
			window     int
		}{
			{"base64", base64.StdEncoding.EncodeToString(b), 12},
			{"base64url", base64.URLEncoding.EncodeToString(b), 12},
			{"hex", hex.EncodeToString(b), 16},
			{"HEX", strings.ToUpper(hex.EncodeToString(b)), 16},
			{"a list", fmt.Sprint(b), 28},
			{"a Go slice", fmt.Sprintf("%#v", b), 44},
			{"%q", fmt.Sprintf("%q", b), 24},
		} {
			needles = append(needles, needle{what + " as " + f.form, strings.TrimRight(f.text, "="), f.window})
		}
		needles = append(needles, needle{what + " raw", string(b), 8})
		// Unaligned base64: the material after 1 or 2 other bytes.
		for _, pad := range []string{"x", "xy"} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				e := enc.EncodeToString(append([]byte(pad), b...))
				needles = append(needles, needle{what + " as shifted base64", strings.TrimRight(e[4:], "="), 12})
			}
		}
	}
	return func(s string) string {
		for _, n := range needles {
			for i := 0; i+n.window <= len(n.text); i++ {
				if strings.Contains(s, n.text[i:i+n.window]) {
					return n.what
				}
			}
		}
		return ""
	}
}
