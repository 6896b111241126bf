package token_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom/token"
)

func ExampleCodec() {
	// In production: keys, err := token.ParseKeys(os.Getenv("WAITINGROOM_KEY"))
	keys, err := token.ParseKeys("k1:" + strings.Repeat("A", 43))
	if err != nil {
		panic(err)
	}
	codec, err := token.NewCodec(keys)
	if err != nil {
		panic(err)
	}

	admitted := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC) // the store's clock
	s, err := codec.SignPass(token.Pass{
		Room:    "checkout",
		Session: 42,
		Issued:  admitted,
		Expires: admitted.Add(30 * time.Minute),
		RenewAt: admitted.Add(20 * time.Minute),
	})
	if err != nil {
		panic(err)
	}

	p, err := codec.ParsePass("checkout", s, admitted.Add(time.Minute))
	fmt.Println(p.Session, p.RenewAt.Format(time.TimeOnly), err)

	_, err = codec.ParsePass("checkout", s, admitted.Add(time.Hour))
	fmt.Println(errors.Is(err, token.ErrExpired))

	_, err = codec.ParsePass("search", s, admitted.Add(time.Minute))
	fmt.Println(errors.Is(err, token.ErrInvalid))
	// Output:
	// 42 15:20:00 <nil>
	// true
	// true
}

func ExampleVerifier() {
	keys, _ := token.ParseKeys("k1:" + strings.Repeat("A", 43))
	seed := make([]byte, ed25519.SeedSize) // use crypto/rand in production
	signer, err := token.NewEd25519Signer("2025-03", ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	room, err := token.NewCodec(keys, token.WithPassSigner(signer))
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	s, _ := room.SignPass(token.Pass{Room: "checkout", Session: 7, Expires: now.Add(time.Hour)})

	// Another service fetches room.JWKSHandler() (say /.well-known/jwks.json).
	v, err := token.NewVerifier(room.JWKS())
	if err != nil {
		panic(err)
	}
	p, err := v.ParsePass("checkout", s, now)
	fmt.Println(p.Session, err)
	// Output: 7 <nil>
}
