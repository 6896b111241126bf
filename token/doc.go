// Package token signs and verifies the two cookies of a waiting room.
//
// A ticket ([Ticket]) is a visitor's place in the queue: its number, the store
// epoch the number belongs to, and the last estimate shown. The room re-signs it
// on every counted poll, and it expires when the visitor stops polling for longer
// than the hold time. A pass ([Pass]) is what an admitted visitor carries: the
// session it belongs to and when the middleware should renew it with the store.
//
// Both are compact JWTs (RFC 7519), each with exactly one accepted spelling:
// the parsers refuse whitespace, padding, non-canonical base64 or JSON and the
// second (high-S) form of an ECDSA signature, so a token cannot be altered
// into another string that is still valid.
//
// The two kinds can never be swapped: each has its own header type ("wr-ticket+jwt", "wr-pass+jwt"), and each is signed with a
// key derived from the configured secret for that kind alone, so a ticket does not
// verify as a pass even if the type check were skipped. Algorithms are pinned:
// tickets are HS256 only; passes are HS256 or the algorithm of the configured
// [Signer]. "none" and every other algorithm are rejected as [ErrInvalid].
//
// Time is never read from the wall clock. Parse functions take now, which should
// be the store's clock, the same clock that set Expires, so skewed application
// servers agree on expiry. Tokens keep Expires to the second (rounded down, so a
// token never outlives what the store granted) and every other time to the
// millisecond.
//
// # Key rotation
//
// A [Codec] holds a ring of HMAC keys, each with an ID that goes into the token's
// "kid" header. The first key signs; every key verifies. To rotate, put the new
// key first and keep the old one second until everything it signed has expired
// (the hold time for tickets, the session lifetime for passes), then remove it.
// [ParseKeys] reads a ring from configuration such as
//
//	WAITINGROOM_KEY="k2:NEW_BASE64,k1:OLD_BASE64"
//
// and [GenerateKey] with [FormatKeys] makes a new entry. Nothing else in this
// package prints a secret: errors, String methods, fmt's verbs, log/slog and
// encoding/json show key IDs only.
//
// # Verifying passes elsewhere
//
// With [WithPassSigner], passes are signed with Ed25519 ([NewEd25519Signer]) or
// ECDSA P-256 ([NewES256Signer]) instead of HMAC, so another service can check
// them without holding the room's secrets. The room publishes the public keys
// with [Codec.JWKSHandler] (for example at /.well-known/jwks.json); the other
// service builds a [Verifier] from that document with [NewVerifier]. Signers
// rotate like HMAC keys: pass the previous public keys as the "more" arguments so
// they stay in the key set until the passes they signed expire. Tickets stay HMAC
// because they never leave the room.
package token
