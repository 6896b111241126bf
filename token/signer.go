package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Signer signs passes with a private key so that other services can verify
// them with only the public key. Build one with [NewEd25519Signer] or
// [NewES256Signer] and give it to [WithPassSigner].
type Signer interface {
	passSigner() *asymSigner
}

// PublicKey is an older pass-signing key that is still accepted, so passes it
// signed stay valid through a rotation. Key is an ed25519.PublicKey or an
// *ecdsa.PublicKey on P-256; ID follows the rules of HMACKey.ID.
type PublicKey struct {
	ID  string
	Key crypto.PublicKey
}

// NewEd25519Signer returns a Signer that signs passes with key (alg EdDSA)
// under key ID kid. Passes signed by the keys in more are still accepted and
// published in the JWKS.
func NewEd25519Signer(kid string, key ed25519.PrivateKey, more ...PublicKey) (Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("token: Ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	key = append(ed25519.PrivateKey(nil), key...) // the caller may reuse its slice
	s, err := newAsymSigner(kid, algEdDSA, &privateKey{ed: key}, key.Public(), more)
	if err != nil {
		return nil, err // not s: a nil *asymSigner in a Signer is not a nil Signer
	}
	return s, nil
}

// NewES256Signer returns a Signer that signs passes with key (alg ES256, curve
// P-256 only) under key ID kid. Passes signed by the keys in more are still
// accepted and published in the JWKS. Signatures are deterministic (RFC 6979)
// and have the low S, and passes with the high S are refused, so that no one
// can make a second spelling of a pass.
func NewES256Signer(kid string, key *ecdsa.PrivateKey, more ...PublicKey) (Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("token: ES256 needs a P-256 private key")
	}
	if _, err := key.Bytes(); err != nil {
		return nil, fmt.Errorf("token: ES256 private key: %w", err)
	}
	s, err := newAsymSigner(kid, algES256, &privateKey{ec: key}, &key.PublicKey, more)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// asymSigner is the only Signer; the interface keeps its fields out of the API.
type asymSigner struct {
	kid  string
	alg  string
	priv *privateKey
	keys []verifyKey // the signing key's public half first, then more
	jwks []byte
}

func (s *asymSigner) passSigner() *asymSigner { return s }

// String names the signer's keys and never shows the private key, for example
// "token.Signer{EdDSA ed2, also accepts: ed1}".
func (s *asymSigner) String() string {
	if s == nil {
		return "token.Signer(nil)"
	}
	var b strings.Builder
	b.WriteString("token.Signer{" + s.alg + " " + s.kid)
	for i, k := range s.keys[1:] {
		if i == 0 {
			b.WriteString(", also accepts:")
		}
		b.WriteString(" " + k.alg + " " + k.id)
	}
	b.WriteString("}")
	return b.String()
}

// Format prints String under every verb.
func (s *asymSigner) Format(f fmt.State, verb rune) { formatSafe(f, verb, s.String(), s.String()) }

// LogValue is String for log/slog.
func (s *asymSigner) LogValue() slog.Value { return slog.StringValue(s.String()) }

func newAsymSigner(kid, alg string, priv *privateKey, pub crypto.PublicKey, more []PublicKey) (*asymSigner, error) {
	s := &asymSigner{kid: kid, alg: alg, priv: priv}
	set := jwkSet{Keys: make([]jwk, 0, 1+len(more))}
	for i, pk := range append([]PublicKey{{ID: kid, Key: pub}}, more...) {
		if !validKeyID(pk.ID) {
			return nil, fmt.Errorf("token: signer key %d: %w", i+1, errKeyID)
		}
		for _, prev := range s.keys {
			if prev.id == pk.ID {
				return nil, fmt.Errorf("token: duplicate key id %q", pk.ID)
			}
		}
		vk, j, err := publicKey(pk)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			// A private key whose halves disagree would sign passes nobody can
			// verify; find out now rather than at the first admission.
			v := newVerifier(typPass, []verifyKey{vk})
			tok, err := newSignKey(alg, kid, typPass, nil, priv).sign([]byte(probePayload))
			var buf [maxPayload]byte
			if err == nil {
				_, err = v.verify(tok, &buf)
			}
			if err != nil {
				return nil, fmt.Errorf("token: %s private key does not verify: %w", alg, err)
			}
		}
		s.keys = append(s.keys, vk)
		set.Keys = append(set.Keys, j)
	}
	var err error
	if s.jwks, err = json.Marshal(set); err != nil {
		return nil, err
	}
	return s, nil
}

// probePayload is what a new signer signs to check its key.
const probePayload = `{"aud":"probe","exp":1}`

// publicKey validates pk and returns it for verification and for the JWKS.
func publicKey(pk PublicKey) (verifyKey, jwk, error) {
	enc := base64.RawURLEncoding
	switch k := pk.Key.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return verifyKey{}, jwk{}, fmt.Errorf("token: key %q: Ed25519 public key has %d bytes", pk.ID, len(k))
		}
		k = append(ed25519.PublicKey(nil), k...)
		return verifyKey{id: pk.ID, alg: algEdDSA, ed: k},
			jwk{Kty: "OKP", Crv: "Ed25519", X: enc.EncodeToString(k), Kid: pk.ID, Alg: algEdDSA, Use: "sig"}, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return verifyKey{}, jwk{}, fmt.Errorf("token: key %q: ES256 needs a P-256 public key", pk.ID)
		}
		b, err := k.Bytes()
		if err == nil {
			k, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b) // on the curve, and our own copy
		}
		if err != nil {
			return verifyKey{}, jwk{}, fmt.Errorf("token: key %q: %w", pk.ID, err)
		}
		return verifyKey{id: pk.ID, alg: algES256, ec: k},
			jwk{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(b[1:33]), Y: enc.EncodeToString(b[33:]), Kid: pk.ID, Alg: algES256, Use: "sig"}, nil
	default:
		return verifyKey{}, jwk{}, fmt.Errorf("token: key %q: unsupported public key type %T", pk.ID, pk.Key)
	}
}
