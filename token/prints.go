package token

import "encoding/hex"

// Prints are fingerprints of a codec's HMAC keys: what instances compare to find out
// whether they hold the same keys, without showing them. A print is 8 bytes of a MAC of a
// fixed text under a key derived from the key's secret (hex): it reveals nothing of the
// secret, and two keys with one ID and different secrets have different prints.
type Prints struct {
	Signer string            // the ID of the key that signs tickets
	Keys   map[string]string // key ID -> print
}

// Prints returns the fingerprints of c's HMAC keys.
func (c *Codec) Prints() Prints {
	p := Prints{Signer: c.ticketSigner.kid, Keys: make(map[string]string, len(c.prints))}
	for id, v := range c.prints {
		p.Keys[id] = v
	}
	return p
}

// printOf is the print of an HMAC key's secret.
func printOf(secret []byte) string {
	return hex.EncodeToString(deriveKey(secret, printLabel)[:8])
}

// Bind returns the binding of a token to the client value v (see Ticket.Binding): a MAC
// of v under a key derived from the signing key, 16 hex digits, so that a token shows
// nothing of v (a client address, say) and nobody without the key can make one for
// another value. "" for "".
func (c *Codec) Bind(v string) string {
	if v == "" {
		return ""
	}
	return hex.EncodeToString(c.secret.sum(nil, []byte("bind "+v))[:bindingLen/2])
}
