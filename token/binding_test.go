package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBinding(t *testing.T) {
	c, err := NewCodec([]HMACKey{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	b := c.Bind("203.0.113.7")
	if len(b) != 16 || b == c.Bind("203.0.113.8") || c.Bind("") != "" || strings.Contains(b, "203") {
		t.Fatalf("Bind: %q", b)
	}
	p := Pass{Room: "r", Session: 1, Epoch: 1, Issued: now, Expires: now.Add(time.Minute), Binding: b}
	raw, err := c.SignPass(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ParsePass("r", raw, now)
	if err != nil || got.Binding != b {
		t.Fatalf("the pass's binding: %q, %v", got.Binding, err)
	}
	tk := Ticket{Room: "r", Number: 3, Epoch: 1, LastUpdated: now, Expires: now.Add(time.Minute), Binding: b}
	raw, err = c.SignTicket(tk)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ParseTicket("r", raw, now); err != nil || got.Binding != b {
		t.Fatalf("the ticket's binding: %q, %v", got.Binding, err)
	}
	for _, bad := range []string{"x", strings.ToUpper(b), b + "0", "203.0.113.7"} {
		p.Binding = bad
		if _, err := c.SignPass(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("SignPass with binding %q: %v", bad, err)
		}
	}
	// A payload spelling a binding otherwise is malformed: one byte string per token.
	var pc passClaims
	for _, payload := range []string{
		`{"aud":"r","exp":1,"sid":1,"bnd":""}`,
		`{"aud":"r","exp":1,"sid":1,"bnd":"ABCDEF0123456789"}`,
		`{"aud":"r","exp":1,"sid":1,"bnd":"abc"}`,
	} {
		if err := pc.parse([]byte(payload), "r"); err == nil {
			t.Errorf("%s: accepted", payload)
		}
	}
}
