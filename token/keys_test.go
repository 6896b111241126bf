package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	s1 := bytes.Repeat([]byte{0xfb}, 32) // 0xfb makes '+', '/' in std and '-', '_' in URL base64
	s2 := append(bytes.Repeat([]byte{0xff}, 32), 1, 2, 3)
	std, url := base64.StdEncoding, base64.URLEncoding
	rawStd, rawURL := base64.RawStdEncoding, base64.RawURLEncoding
	type key struct {
		id     string
		secret []byte
	}
	tests := []struct {
		name string
		in   string
		want []key
	}{
		{"bare std padded", std.EncodeToString(s2), []key{{"k1", s2}}},
		{"bare url raw", rawURL.EncodeToString(s1), []key{{"k1", s1}}},
		{"named std raw", "main:" + rawStd.EncodeToString(s1), []key{{"main", s1}}},
		{"two keys", "new:" + url.EncodeToString(s1) + ",old:" + std.EncodeToString(s2), []key{{"new", s1}, {"old", s2}}},
		{"spaces and trailing comma", "  a : " + rawURL.EncodeToString(s1) + " , b:" + rawStd.EncodeToString(s2) + ",\n", []key{{"a", s1}, {"b", s2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].ID != w.id || !bytes.Equal(got[i].Secret, w.secret) {
					t.Errorf("key %d = %q:%x, want %q:%x", i, got[i].ID, got[i].Secret, w.id, w.secret)
				}
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := rawURL(bytes.Repeat([]byte{7}, 32))
	short := rawURL(bytes.Repeat([]byte{7}, 31))
	tests := []struct {
		name string
		in   string
		err  error // nil: any error
	}{
		{"empty", "", ErrNoKeys},
		{"blank", " \t\n", ErrNoKeys},
		{"only commas", ",,", ErrNoKeys},
		{"short bare", short, ErrWeakKey},
		{"short named", "k2:" + short, ErrWeakKey},
		{"short second", "a:" + good + ",b:" + short, ErrWeakKey},
		{"empty secret", "k1:", ErrWeakKey},
		{"bad base64", "k1:" + good[:10] + "!" + good[11:], nil},
		{"mixed alphabets", "k1:+" + good[1:20] + "-" + good[21:], nil},
		{"spare bits set", "k1:" + good[:len(good)-1] + "B", nil}, // 32 bytes end in a 4-bit-short character
		{"unnamed among named", "a:" + good + "," + good, nil},
		{"two unnamed", good + "," + good, nil},
		{"empty id", ":" + good, nil},
		{"bad id", "a b:" + good, nil},
		{"duplicate id", "a:" + good + ",a:" + good, nil},
		{"secret:id", good + ":k1", nil},
		{"secret:id, std", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + ":k1", nil},
		{"id is the secret", good + ":" + good, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(tt.in)
			if err == nil || keys != nil {
				t.Fatalf("ParseKeys = %v, %v; want an error", keys, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			// Configuration errors end up in logs: they must not carry secrets.
			if strings.Contains(err.Error(), good[:8]) || strings.Contains(err.Error(), short[:8]) {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

// Errors name a key by its position, and say when an entry looks written
// "secret:id".
func TestParseKeysErrorText(t *testing.T) {
	good := rawURL(bytes.Repeat([]byte{7}, 32))
	for _, tt := range []struct{ in, want string }{
		{"a:" + good + ",b:" + good[:20], "key 2 has 15 bytes"},
		{good + ":k1", "token: key 1: secret is not base64 (are its ID and secret swapped?)"},
		{"k1:" + good + ",, " + good + ":AAAA", "key 3 has 3 bytes (are its ID and secret swapped?)"},
		{"k1:" + good + ",k1:" + good, "token: key 2 has the ID of key 1"},
		{good + ":" + good, "token: key 1: its ID is its secret"},
	} {
		if _, err := ParseKeys(tt.in); err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("ParseKeys: err = %v, want it to end %q", err, tt.want)
		}
	}
}

func rawURL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestGenerateKeyRoundTrip(t *testing.T) {
	a, err := GenerateKey("2025-03")
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey("2025-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Secret) != 32 || bytes.Equal(a.Secret, b.Secret) || bytes.Equal(a.Secret, make([]byte, 32)) {
		t.Fatalf("secrets %x and %x: want 32 distinct random bytes", a.Secret, b.Secret)
	}
	got, err := ParseKeys(FormatKeys(a, b))
	if err != nil {
		t.Fatalf("ParseKeys(FormatKeys()): %v", err)
	}
	if len(got) != 2 || got[0].ID != a.ID || !bytes.Equal(got[0].Secret, a.Secret) ||
		got[1].ID != b.ID || !bytes.Equal(got[1].Secret, b.Secret) {
		t.Fatalf("round trip changed the keys: %v", got)
	}
	if _, err := NewCodec(got); err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
}

func TestFormatKeys(t *testing.T) {
	k := HMACKey{ID: "k7", Secret: bytes.Repeat([]byte{0xfb}, 32)}
	const want = "k7:-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s,k8:-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s"
	if got := FormatKeys(k, HMACKey{ID: "k8", Secret: k.Secret}); got != want {
		t.Errorf("FormatKeys = %q, want %q", got, want)
	}
	if got := FormatKeys(); got != "" {
		t.Errorf("FormatKeys() = %q, want \"\"", got)
	}
}

func TestHMACKeyString(t *testing.T) {
	tests := []struct {
		name string
		k    HMACKey
		want string
	}{
		{"valid", HMACKey{ID: "k7", Secret: bytes.Repeat([]byte{0xfb}, 32)}, "k7:<32 bytes redacted>"},
		// An invalid key may be "secret:id" in the wrong fields: hide its ID.
		{"swapped", HMACKey{ID: rawURL(bytes.Repeat([]byte{0xfb}, 32)), Secret: []byte("k7")}, "<invalid key>:<2 bytes redacted>"},
		{"bad id", HMACKey{ID: "a b", Secret: make([]byte, 32)}, "<invalid key>:<32 bytes redacted>"},
		{"zero", HMACKey{}, "<invalid key>:<0 bytes redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got, want := fmt.Sprintf("%-30s|%q", tt.k, tt.k), fmt.Sprintf("%-30s|%q", tt.want, tt.want); got != want {
				t.Errorf("%%-30s|%%q = %s, want %s", got, want)
			}
		})
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	for _, id := range []string{"", "a:b", "a,b", "a b", strings.Repeat("x", 65), "caf\u00e9"} {
		t.Run(id, func(t *testing.T) {
			if k, err := GenerateKey(id); err == nil {
				t.Fatalf("GenerateKey(%q) = %v, want an error", id, k)
			}
		})
	}
}
