package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// HMACKey is one shared secret in a Codec's key ring.
type HMACKey struct {
	// ID names the key in each token's "kid" header: 1 to 64 ASCII letters,
	// digits, '-', '_' or '.'.
	ID string
	// Secret is at least 32 bytes. It is never used directly: the ticket and
	// pass keys are derived from it.
	Secret []byte
}

// String returns "id:base64url", the form ParseKeys reads. It reveals the
// secret: it exists to write configuration, not to be logged.
func (k HMACKey) String() string {
	return k.ID + ":" + base64.RawURLEncoding.EncodeToString(k.Secret)
}

// GenerateKey returns a key with ID id and 32 random bytes from crypto/rand.
func GenerateKey(id string) (HMACKey, error) {
	if err := checkKeyID(id); err != nil {
		return HMACKey{}, err
	}
	k := HMACKey{ID: id, Secret: make([]byte, 32)}
	if _, err := rand.Read(k.Secret); err != nil {
		return HMACKey{}, fmt.Errorf("token: generate key: %w", err)
	}
	return k, nil
}

// ParseKeys reads a key ring from configuration such as the WAITINGROOM_KEY
// environment variable: "kid1:BASE64,kid2:BASE64", the signing key first.
// Secrets may be standard or URL base64, padded or not. A value with no
// "kid:" prefix is a single key with ID "k1". Errors name the key
// but never include secret material.
func ParseKeys(s string) ([]HMACKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ErrNoKeys
	}
	if !strings.Contains(s, ":") && !strings.Contains(s, ",") {
		s = defaultKeyID + ":" + s
	}
	var keys []HMACKey
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue // tolerate a trailing comma
		}
		id, val, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("token: key %d: want id:base64", i+1)
		}
		id = strings.TrimSpace(id)
		secret, err := decodeSecret(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("token: key %q: secret is not base64", id)
		}
		k := HMACKey{ID: id, Secret: secret}
		if err := k.validate(); err != nil {
			return nil, err
		}
		for _, prev := range keys {
			if prev.ID == id {
				return nil, fmt.Errorf("token: duplicate key id %q", id)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	return keys, nil
}

// defaultKeyID is the ID ParseKeys gives a key configured without one.
const defaultKeyID = "k1"

// decodeSecret accepts standard or URL base64, with or without padding.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	// Strict: nonzero spare bits usually mean a truncated or mistyped secret.
	return enc.Strict().DecodeString(s)
}

func (k HMACKey) validate() error {
	if err := checkKeyID(k.ID); err != nil {
		return err
	}
	if len(k.Secret) < 32 {
		return fmt.Errorf("%w: key %q has %d bytes", ErrWeakKey, k.ID, len(k.Secret))
	}
	return nil
}

// checkKeyID keeps IDs short and free of the separators ParseKeys splits on.
func checkKeyID(id string) error {
	if id == "" {
		return errors.New("token: empty key id")
	}
	if len(id) > 64 {
		return fmt.Errorf("token: key id longer than 64 bytes")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("token: key id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}
