package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Errors returned by this package, checked with errors.Is.
var (
	// ErrInvalid means the token is not one this room issued for this purpose:
	// forged, tampered, malformed, signed with an unknown key or a disallowed
	// algorithm, of the wrong kind, or for another room. Sign methods also return
	// it, wrapped, for a Ticket or Pass that cannot be signed.
	ErrInvalid = errors.New("token: invalid")
	// ErrExpired means the token is authentic but now is at or past its Expires.
	ErrExpired = errors.New("token: expired")
	// ErrTooLarge means the token is longer than MaxSize. It is checked before
	// any parsing, so an oversized cookie costs nothing to reject.
	ErrTooLarge = errors.New("token: too large")
	// ErrNoKeys means no HMAC key was configured.
	ErrNoKeys = errors.New("token: no keys")
	// ErrWeakKey means an HMAC secret is shorter than 32 bytes.
	ErrWeakKey = errors.New("token: secret shorter than 32 bytes")
)

// MaxSize is the longest token accepted or produced, in bytes. Browsers keep
// about 4 KiB per cookie, so a longer token could not have come from us.
const MaxSize = 4096

// Ticket is a visitor's place in the queue.
type Ticket struct {
	Room        string        // the room the place is in; the token's audience
	Number      int64         // queue ticket number
	Epoch       int64         // store incarnation the number belongs to
	Joined      time.Time     // when the place was taken (store clock)
	LastUpdated time.Time     // store time of the last counted poll
	Expires     time.Time     // the place is lost after this (LastUpdated + hold); required
	UsersAhead  int64         // visitors ahead at LastUpdated
	WaitKnown   bool          // whether the Wait fields hold an estimate
	Wait25      time.Duration // 25th percentile of the wait estimate at LastUpdated
	Wait50      time.Duration // median wait estimate
	Wait75      time.Duration // 75th percentile wait estimate
	// NextPoll is when the store expects the holder's next poll (store clock): a refresh
	// interval after LastUpdated, or sooner when a slot is due. Zero: not set.
	NextPoll time.Time

	// AheadAtEntry is UsersAhead when the visitor first had a place in line (0: none yet,
	// as in a random queue), for a progress bar.
	AheadAtEntry int64

	// Binding, when not empty, ties the ticket to one client: Codec.Bind of a value the
	// host chose (a client address prefix, a device cookie, a user ID). "" : unbound.
	Binding string
}

// Pass is an admitted visitor's session.
type Pass struct {
	Room    string    // the room admitted to; the token's audience
	Session int64     // session ID in the store
	Epoch   int64     // store incarnation the session belongs to
	Issued  time.Time // admission (or renewal) time, store clock
	// Admitted is when the session began, kept through renewals: a room with a longest
	// session (waitingroom's MaxSessionDuration) stops renewing from it. Zero in passes of
	// earlier versions, which read it as Issued.
	Admitted time.Time
	Expires  time.Time // session expiry in the store; required
	RenewAt  time.Time // when the middleware should renew with the store
	Scope    string    // what the pass was issued for; "" means the room's base settings
	// Binding ties the pass to one client, as Ticket.Binding does.
	Binding string
	// Local says an instance issued the pass alone while its store was unreachable
	// (waitingroom.WithFallback): its session is in no store until its first renewal, which
	// asks the store to count it. Session is then the number of the holder's ticket.
	Local bool
}

// Codec signs and verifies tickets and passes. It is safe for concurrent use.
//
// Printing a Codec, with fmt or log/slog, shows its key IDs and algorithms
// only. Its keys sit two pointers deep, so even a Codec value, which fmt
// prints field by field, shows addresses and no key.
type Codec struct {
	ticketSigner *signKey
	passSigner   *signKey
	tickets      *verifier
	passes       *verifier
	jwks         []byte
	secret       *macPool          // keyed with the signing key's root for Secret
	prints       map[string]string // key ID -> print (see Prints)
}

// Option configures a Codec.
type Option func(*codecOptions)

// WithPassSigner signs passes with s (Ed25519 or ECDSA P-256) instead of HMAC,
// so other services can verify them with a [Verifier] built from [Codec.JWKS].
// Passes signed with the HMAC keys are still accepted, which lets a deployment
// move from HMAC to a signer without logging anyone out. Tickets always use HMAC.
// By default passes are signed with the first HMAC key.
func WithPassSigner(s Signer) Option {
	return func(o *codecOptions) {
		o.passSigner = s
		o.passSignerSet = true
	}
}

// NewCodec returns a Codec for the key ring keys. The first key signs; all keys
// verify, so a rotation puts the new key first and keeps the old one until
// the tickets and passes it signed have expired. Key IDs must be unique.
func NewCodec(keys []HMACKey, opts ...Option) (*Codec, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	var o codecOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}

	ticketKeys := make([]verifyKey, 0, len(keys))
	passKeys := make([]verifyKey, 0, len(keys)+2)
	for i, k := range keys {
		if err := k.validate(i + 1); err != nil {
			return nil, err
		}
		for j, prev := range keys[:i] {
			if prev.ID == k.ID {
				return nil, fmt.Errorf("token: key %d has the ID of key %d", i+1, j+1)
			}
		}
		// Per-kind keys: a ticket MAC can never be a valid pass MAC.
		ticketKeys = append(ticketKeys, verifyKey{id: k.ID, alg: algHS256, mac: newMACPool(deriveKey(k.Secret, ticketLabel))})
		passKeys = append(passKeys, verifyKey{id: k.ID, alg: algHS256, mac: newMACPool(deriveKey(k.Secret, passLabel))})
	}

	c := &Codec{jwks: []byte(emptyJWKS), secret: newMACPool(deriveKey(keys[0].Secret, secretLabel)), prints: make(map[string]string, len(keys))}
	for _, k := range keys {
		c.prints[k.ID] = printOf(k.Secret)
	}
	c.ticketSigner = newSignKey(algHS256, ticketKeys[0].id, typTicket, ticketKeys[0].mac, nil)
	if o.passSignerSet {
		s, _ := o.passSigner.(*asymSigner)
		if s == nil {
			return nil, errors.New("token: WithPassSigner: nil signer")
		}
		passKeys = append(passKeys, s.keys...)
		c.passSigner = newSignKey(s.alg, s.kid, typPass, nil, s.priv)
		c.jwks = s.jwks
	} else {
		c.passSigner = newSignKey(algHS256, passKeys[0].id, typPass, passKeys[0].mac, nil)
	}
	c.tickets = newVerifier(typTicket, ticketKeys)
	c.passes = newVerifier(typPass, passKeys)
	return c, nil
}

// Secret returns 32 bytes derived from the signing key for purpose: a secret that every
// instance holding the same first key computes alike, and that no token reveals. A room
// keys the shuffle of an event's pre-queue with it.
func (c *Codec) Secret(purpose string) []byte {
	return c.secret.sum(nil, []byte(purpose))
}

// SignTicket returns t as a signed token. Room and Expires are required, and
// no count or wait may be negative. Times are kept to the millisecond, Expires
// to the second (rounded down), waits to the nearest second.
func (c *Codec) SignTicket(t Ticket) (string, error) {
	var tc ticketClaims
	if err := tc.from(&t); err != nil {
		return "", err
	}
	var buf [256]byte
	return c.ticketSigner.sign(tc.appendJSON(buf[:0]))
}

// ParseTicket verifies s as a ticket for room. It returns ErrTooLarge,
// ErrInvalid (wrapped with a reason), or ErrExpired when now is at or past
// Expires. With ErrExpired the Ticket is returned too: it is authentic, just
// no longer valid, which lets the caller tell a lost place from a forged one.
func (c *Codec) ParseTicket(room, s string, now time.Time) (Ticket, error) {
	var buf [maxPayload]byte
	payload, err := c.tickets.verify(s, &buf)
	if err != nil {
		return Ticket{}, err
	}
	var tc ticketClaims
	if err := tc.parse(payload, room); err != nil {
		return Ticket{}, err
	}
	t := tc.ticket()
	if !now.Before(t.Expires) {
		return t, ErrExpired
	}
	return t, nil
}

// SignPass returns p as a signed token, with the pass signer if one was
// configured and the first HMAC key otherwise. Room and Expires are required.
// Times are kept to the millisecond, Expires to the second (rounded down).
func (c *Codec) SignPass(p Pass) (string, error) {
	var pc passClaims
	if err := pc.from(&p); err != nil {
		return "", err
	}
	var buf [256]byte
	return c.passSigner.sign(pc.appendJSON(buf[:0]))
}

// ParsePass verifies s as a pass for room, signed with any HMAC key in the
// ring or any key of the pass signer. Errors are as for [Codec.ParseTicket];
// with ErrExpired the Pass is returned too.
func (c *Codec) ParsePass(room, s string, now time.Time) (Pass, error) {
	return c.passes.parsePass(room, s, now)
}

// parsePass is ParsePass for a Codec and a Verifier.
func (v *verifier) parsePass(room, s string, now time.Time) (Pass, error) {
	var buf [maxPayload]byte
	payload, err := v.verify(s, &buf)
	if err != nil {
		return Pass{}, err
	}
	var pc passClaims
	if err := pc.parse(payload, room); err != nil {
		return Pass{}, err
	}
	p := pc.pass()
	if !now.Before(p.Expires) {
		return p, ErrExpired
	}
	return p, nil
}

// LooksLikeTicket reports whether s declares itself a ticket in its JWT header. It verifies
// nothing; it lets a caller holding a token of either kind try the right parser first, so
// that a poll does not pay for parsing its ticket as a pass.
func LooksLikeTicket(s string) bool {
	end := strings.IndexByte(s, '.')
	if end < 0 || end > maxHeader {
		return false
	}
	var buf [maxHeader]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(s[:end]))
	return err == nil && bytes.Contains(buf[:n], []byte(`"typ":"`+typTicket+`"`))
}

// maxHeader bounds the encoded JWT header LooksLikeTicket decodes; this package's headers
// are under 100 bytes.
const maxHeader = 256

type codecOptions struct {
	passSigner    Signer
	passSignerSet bool
}

// String names the Codec's keys and never shows their material, for example
// "token.Codec{keys: k2 k1, pass signer: EdDSA ed1}".
func (c *Codec) String() string {
	if c == nil || c.tickets == nil {
		return "token.Codec{}"
	}
	var b strings.Builder
	b.WriteString("token.Codec{keys:")
	for _, k := range c.tickets.keys {
		b.WriteString(" " + k.id)
	}
	b.WriteString(", pass signer: " + c.passSigner.alg + " " + c.passSigner.kid + "}")
	return b.String()
}

// Format prints String under every verb.
func (c *Codec) Format(f fmt.State, verb rune) { formatSafe(f, verb, c.String(), c.String()) }

// LogValue is String for log/slog.
func (c *Codec) LogValue() slog.Value { return slog.StringValue(c.String()) }
