package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The middleware's admitted path is one ParsePass per request. Its budget is
// 1.5x BenchmarkJWTBaseline: plain golang-jwt verifying a similar HS256 token.
func BenchmarkParsePass(b *testing.B) {
	c := newCodec(b, []HMACKey{testKey("k1", 1)})
	s, err := c.SignPass(fullPass())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ParsePass(room, s, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// baselineClaims carries the same claims as a pass, the golang-jwt way.
type baselineClaims struct {
	jwt.RegisteredClaims
	Sid int64  `json:"sid,omitempty"`
	Ep  int64  `json:"ep,omitempty"`
	Is  int64  `json:"is,omitempty"`
	Rn  int64  `json:"rn,omitempty"`
	Scp string `json:"scp,omitempty"`
}

func BenchmarkJWTBaseline(b *testing.B) {
	key := deriveKey(testKey("k1", 1).Secret, passLabel)
	p := fullPass()
	// golang-jwt validates exp against the wall clock, so the token must be
	// current; nothing here waits on that clock.
	exp := time.Now().Add(time.Hour)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, baselineClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{p.Room},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(p.Issued),
		},
		Sid: p.Session, Ep: p.Epoch, Is: p.Issued.UnixMilli(), Rn: p.RenewAt.UnixMilli(),
	})
	tok.Header["kid"] = "k1"
	tok.Header["typ"] = typPass
	s, err := tok.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}))
	keyfunc := func(*jwt.Token) (any, error) { return key, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.ParseWithClaims(s, &baselineClaims{}, keyfunc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignTicket(b *testing.B) {
	c := newCodec(b, []HMACKey{testKey("k1", 1)})
	tk := fullTicket()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.SignTicket(tk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTicket(b *testing.B) {
	c := newCodec(b, []HMACKey{testKey("k1", 1)})
	s, err := c.SignTicket(fullTicket())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ParseTicket(room, s, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePassParallel runs the admitted path from many goroutines at
// once, as a server does; under -race it doubles as a race finder.
func BenchmarkParsePassParallel(b *testing.B) {
	c := newCodec(b, []HMACKey{testKey("k1", 1)})
	s, err := c.SignPass(fullPass())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.ParsePass(room, s, t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Asymmetric passes cost what the curve costs; these are for reference.
func BenchmarkParsePassSigned(b *testing.B) {
	keys := []HMACKey{testKey("k1", 1)}
	for _, bb := range []struct {
		name   string
		signer Signer
	}{
		{"EdDSA", edSigner(b, "ed1", edKey(7))},
		{"ES256", esSigner(b, "es1", esKey(b))},
	} {
		b.Run(bb.name, func(b *testing.B) {
			c := newCodec(b, keys, WithPassSigner(bb.signer))
			s, err := c.SignPass(fullPass())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ParsePass(room, s, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
