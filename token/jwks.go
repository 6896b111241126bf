package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// JWKS returns the JSON Web Key Set (RFC 7517) of the public keys that verify
// passes: the pass signer's key and its older keys, or `{"keys":[]}` when
// passes are signed with HMAC. The caller may modify the returned slice.
func (c *Codec) JWKS() []byte {
	return append([]byte(nil), c.jwks...)
}

// JWKSHandler serves JWKS to GET and HEAD requests, with Content-Type
// application/jwk-set+json and a five-minute cache lifetime, which bounds how
// long a new signer takes to reach verifiers that cache the document.
func (c *Codec) JWKSHandler() http.Handler {
	body := c.jwks
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", length)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body) // a failed write means the client left; nothing to do
		}
	})
}

// Verifier verifies passes with public keys only, so a service other than the
// room can check them without the store or the HMAC secrets. It accepts
// EdDSA and ES256 passes and nothing else. It is safe for concurrent use.
type Verifier struct {
	passes *verifier
}

// NewVerifier returns a Verifier for the keys in jwks, a JSON Web Key Set such
// as [Codec.JWKSHandler] serves. It uses the Ed25519 (kty OKP) and P-256
// (kty EC) signing keys that have a "kid" and skips other keys; a usable key
// type with bad key material is an error, and so is a set with no usable key
// (ErrNoKeys). To follow a rotation, build a new Verifier from a fresh copy.
func NewVerifier(jwks []byte) (*Verifier, error) {
	var set jwkSet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	var keys []verifyKey
	for _, j := range set.Keys {
		vk, ok, err := j.verifyKey()
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		for _, prev := range keys {
			if prev.id == vk.id {
				return nil, fmt.Errorf("token: JWKS: duplicate key id %q", vk.id)
			}
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: JWKS has no Ed25519 or P-256 signing key", ErrNoKeys)
	}
	return &Verifier{passes: newVerifier(typPass, keys)}, nil
}

// ParsePass verifies s as a pass for room; errors are as for [Codec.ParsePass].
func (v *Verifier) ParsePass(room, s string, now time.Time) (Pass, error) {
	return v.passes.parsePass(room, s, now)
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// verifyKey returns the key for verification; ok is false for a key this
// package does not use, which a shared key set may well contain.
func (j *jwk) verifyKey() (vk verifyKey, ok bool, err error) {
	if j.Use != "" && j.Use != "sig" || j.Kid == "" {
		return verifyKey{}, false, nil
	}
	enc := base64.RawURLEncoding
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519" && (j.Alg == "" || j.Alg == algEdDSA):
		x, err := enc.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return verifyKey{}, false, fmt.Errorf("token: JWKS key %q: bad Ed25519 x", j.Kid)
		}
		return verifyKey{id: j.Kid, alg: algEdDSA, ed: ed25519.PublicKey(x)}, true, nil
	case j.Kty == "EC" && j.Crv == "P-256" && (j.Alg == "" || j.Alg == algES256):
		x, errX := enc.DecodeString(j.X)
		y, errY := enc.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return verifyKey{}, false, fmt.Errorf("token: JWKS key %q: bad P-256 coordinates", j.Kid)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verifyKey{}, false, fmt.Errorf("token: JWKS key %q: %w", j.Kid, err)
		}
		return verifyKey{id: j.Kid, alg: algES256, ec: k}, true, nil
	default:
		return verifyKey{}, false, nil
	}
}

// emptyJWKS is what JWKS returns when passes are signed with HMAC.
const emptyJWKS = `{"keys":[]}`
