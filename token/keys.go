package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// HMACKey is one shared secret in a Codec's key ring.
//
// Printing a key never shows its secret: String, fmt's verbs, log/slog and
// encoding/json all see the ID and the secret's length only. The exceptions
// are fmt's %p of a key value, which vet reports, and a key held in an
// unexported struct field, which fmt prints without asking the key. Use
// [FormatKeys] to write keys into configuration.
type HMACKey struct {
	// ID names the key in each token's "kid" header: 1 to 64 ASCII letters,
	// digits, '-', '_' or '.'.
	ID string
	// Secret is at least 32 bytes. It is never used directly: the ticket and
	// pass keys are derived from it.
	Secret []byte
}

// String returns "id:<n bytes redacted>". It shows the ID only for a valid key:
// an invalid one may have its ID and secret swapped.
func (k HMACKey) String() string {
	return k.shownID() + ":<" + strconv.Itoa(len(k.Secret)) + " bytes redacted>"
}

// GoString is String for %#v.
func (k HMACKey) GoString() string {
	return `token.HMACKey{ID:` + strconv.Quote(k.shownID()) + `, Secret:<` + strconv.Itoa(len(k.Secret)) + ` bytes redacted>}`
}

// Format prints String under every verb, so %x or %d cannot reach the secret.
func (k HMACKey) Format(f fmt.State, verb rune) { formatSafe(f, verb, k.String(), k.GoString()) }

// LogValue is String for log/slog.
func (k HMACKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes the ID and a redacted secret, so a configuration dumped
// as JSON, or logged through slog's JSON handler, carries no key.
func (k HMACKey) MarshalJSON() ([]byte, error) {
	b := []byte(`{"ID":`)
	b = strconv.AppendQuote(b, k.shownID())
	b = append(b, `,"Secret":"<`...)
	b = strconv.AppendInt(b, int64(len(k.Secret)), 10)
	return append(b, ` bytes redacted>"}`...), nil
}

func (k HMACKey) shownID() string {
	if k.validate(1) != nil {
		return "<invalid key>"
	}
	return k.ID
}

// formatSafe prints s, a description free of key material, as fmt would print
// a string under verb; %#v prints goSyntax.
func formatSafe(f fmt.State, verb rune, s, goSyntax string) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, goSyntax)
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s)
}

// GenerateKey returns a key with ID id and 32 random bytes from crypto/rand.
func GenerateKey(id string) (HMACKey, error) {
	if !validKeyID(id) {
		return HMACKey{}, errKeyID
	}
	k := HMACKey{ID: id, Secret: make([]byte, 32)}
	if _, err := rand.Read(k.Secret); err != nil {
		return HMACKey{}, fmt.Errorf("token: generate key: %w", err)
	}
	return k, nil
}

// FormatKeys returns keys in the form ParseKeys reads, "id:base64url,...". It
// is the one function of this package that reveals secrets: it exists to
// write configuration, and its result must not be logged.
func FormatKeys(keys ...HMACKey) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k.ID)
		b.WriteByte(':')
		b.WriteString(base64.RawURLEncoding.EncodeToString(k.Secret))
	}
	return b.String()
}

// ParseKeys reads a key ring from configuration such as the WAITINGROOM_KEY
// environment variable: "kid1:BASE64,kid2:BASE64", the signing key first.
// Secrets may be standard or URL base64, padded or not. A value with no
// "kid:" prefix is a single key with ID "k1". Errors name a key by its
// position and repeat nothing of s, so even a key written "secret:id" stays
// out of the logs.
func ParseKeys(s string) ([]HMACKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ErrNoKeys
	}
	if !strings.Contains(s, ":") && !strings.Contains(s, ",") {
		s = defaultKeyID + ":" + s
	}
	var keys []HMACKey
	var pos []int // each key's position in s, for errors
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue // tolerate a trailing comma
		}
		id, val, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("token: key %d: want id:base64", n)
		}
		id = strings.TrimSpace(id)
		secret, err := decodeSecret(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("token: key %d: secret is not base64%s", n, swapHint(id))
		}
		k := HMACKey{ID: id, Secret: secret}
		if err := k.validate(n); err != nil {
			if errors.Is(err, ErrWeakKey) {
				return nil, fmt.Errorf("%w%s", err, swapHint(id))
			}
			return nil, err
		}
		for j, prev := range keys {
			if prev.ID == id {
				return nil, fmt.Errorf("token: key %d has the ID of key %d", n, pos[j])
			}
		}
		keys = append(keys, k)
		pos = append(pos, n)
	}
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	return keys, nil
}

// defaultKeyID is the ID ParseKeys gives a key configured without one.
const defaultKeyID = "k1"

// swapHint suggests that an entry is written "secret:id" when what stands
// before its colon decodes to a secret's worth of bytes.
func swapHint(id string) string {
	if b, err := decodeSecret(id); err == nil && len(b) >= 32 {
		return " (are its ID and secret swapped?)"
	}
	return ""
}

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

// validate checks k, the key at position n of a ring. Its errors never repeat
// the ID, which may be a secret put in the wrong field.
func (k HMACKey) validate(n int) error {
	if !validKeyID(k.ID) {
		return fmt.Errorf("token: key %d: ID must be 1 to 64 ASCII letters, digits, '-', '_' or '.'", n)
	}
	if len(k.Secret) < 32 {
		return fmt.Errorf("%w: key %d has %d bytes", ErrWeakKey, n, len(k.Secret))
	}
	// The ID goes into every token's header, in the clear.
	if id, err := decodeSecret(k.ID); err == nil && bytes.Equal(id, k.Secret) {
		return fmt.Errorf("token: key %d: its ID is its secret", n)
	}
	return nil
}

var errKeyID = errors.New("token: a key ID must be 1 to 64 ASCII letters, digits, '-', '_' or '.'")

// validKeyID keeps IDs short and free of the separators ParseKeys splits on.
func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
