package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"sync"
)

// Tokens are compact JWS (RFC 7515), written and read here rather than by a
// general JWT library so that every token has exactly one spelling. A token is
// accepted only as this package writes it: the header byte for byte as its
// key's signer writes it, payload and signature in unpadded base64url with
// zero spare bits and nothing else (base64 decoders skip CR and LF), the
// payload in the one JSON spelling of its claims (see claimReader), and a
// signature that is the only valid one: HMAC and Ed25519 are deterministic and
// their verification exact, and ES256 is signed deterministically (RFC 6979)
// with the low S, the high-S twin being refused.

// Signature algorithms.
const (
	algHS256 = "HS256"
	algEdDSA = "EdDSA"
	algES256 = "ES256"
)

// deriveKey returns HMAC-SHA256(secret, label), the MAC key for one kind of token.
func deriveKey(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// verifyKey is one key a token may name in its "kid" header. Exactly one of
// mac, ed and ec is set, as alg says.
type verifyKey struct {
	id     string
	alg    string
	header string // base64url of the header a token signed with this key has; set by newVerifier
	mac    *macPool
	ed     ed25519.PublicKey
	ec     *ecdsa.PublicKey
}

// check reports whether sig is the signature of msg under k.
func (k *verifyKey) check(msg string, sig []byte) bool {
	switch k.alg {
	case algHS256:
		return k.mac.equal(msg, sig)
	case algEdDSA:
		// ed25519.Verify refuses a non-canonical S and an R that is not the
		// encoding of the point it computes, so each message has one signature.
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, []byte(msg), sig)
	case algES256:
		// (r, s) and (r, n-s) both verify; only the low S is ours.
		if len(sig) != 64 || bytes.Compare(sig[32:], p256HalfOrder[:]) > 0 {
			return false
		}
		h := sha256.Sum256([]byte(msg))
		return ecdsa.Verify(k.ec, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	}
	return false
}

// p256HalfOrder is (n-1)/2 for P-256's group order n, big-endian: the largest S
// of a low-S signature.
var p256HalfOrder = func() (b [32]byte) {
	new(big.Int).Rsh(elliptic.P256().Params().N, 1).FillBytes(b[:])
	return b
}()

// verifier checks one kind of token: header type, algorithm and key ID.
type verifier struct {
	typ  string
	keys []verifyKey
	algs []string
}

func newVerifier(typ string, keys []verifyKey) *verifier {
	v := &verifier{typ: typ, keys: append([]verifyKey(nil), keys...)}
	for i := range v.keys {
		k := &v.keys[i]
		k.header = encodeHeader(k.alg, k.id, typ)
		if !contains(v.algs, k.alg) {
			v.algs = append(v.algs, k.alg)
		}
	}
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// maxPayload is the longest payload a token of MaxSize bytes can carry.
const maxPayload = MaxSize * 3 / 4

// verify checks size, form, type, algorithm, key and signature of s, and
// decodes its payload into buf. It does not look at the claims.
func (v *verifier) verify(s string, buf *[maxPayload]byte) ([]byte, error) {
	if len(s) > MaxSize {
		return nil, ErrTooLarge
	}
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errMalformed
	}
	p, sg, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sg, '.') >= 0 {
		return nil, errMalformed
	}
	var k *verifyKey
	for i := range v.keys {
		if v.keys[i].header == h {
			k = &v.keys[i]
			break
		}
	}
	if k == nil {
		return nil, v.reject(h)
	}
	var sig [64]byte // the longest signature (EdDSA, ES256)
	if base64.RawURLEncoding.DecodedLen(len(sg)) > len(sig) {
		return nil, errSignature
	}
	n, ok := decodeSegment(sig[:], sg)
	if !ok {
		return nil, errMalformed
	}
	if !k.check(s[:len(h)+1+len(p)], sig[:n]) {
		return nil, errSignature
	}
	if n, ok = decodeSegment(buf[:], p); !ok {
		return nil, errMalformed
	}
	return buf[:n], nil
}

// reject says why the header h names none of v's keys. It runs only for tokens
// that are refused anyway, so it may be slow.
func (v *verifier) reject(h string) error {
	var buf [maxHeader]byte
	if base64.RawURLEncoding.DecodedLen(len(h)) > len(buf) {
		return errMalformed
	}
	n, ok := decodeSegment(buf[:], h)
	if !ok {
		return errMalformed
	}
	var m map[string]any
	if json.Unmarshal(buf[:n], &m) != nil {
		return errMalformed
	}
	alg, _ := m["alg"].(string)
	if !contains(v.algs, alg) {
		return errSignature
	}
	if typ, _ := m["typ"].(string); typ != v.typ {
		return errWrongType
	}
	kid, _ := m["kid"].(string)
	for _, k := range v.keys {
		if k.id == kid && k.alg == alg {
			return errMalformed // a known key, its header spelled another way
		}
	}
	return errUnknownKey
}

var strictBase64 = base64.RawURLEncoding.Strict()

// decodeSegment decodes seg, unpadded base64url with zero spare bits and no
// other byte, into dst, which must hold its DecodedLen.
func decodeSegment(dst []byte, seg string) (int, bool) {
	// The decoder skips CR and LF, which would give a token a second spelling.
	if strings.ContainsAny(seg, "\r\n") {
		return 0, false
	}
	// Decode takes bytes; copying through a small array keeps the token's
	// string from being copied to the heap. Its length is a multiple of 4, so
	// only the last chunk can end in a partial quantum.
	var chunk [256]byte
	n := 0
	for len(seg) > 0 {
		c := copy(chunk[:], seg)
		m, err := strictBase64.Decode(dst[n:], chunk[:c])
		if err != nil {
			return 0, false
		}
		n += m
		seg = seg[c:]
	}
	return n, true
}

// encodeHeader returns the base64url JWS header for alg, kid and typ.
func encodeHeader(alg, kid, typ string) string {
	h, _ := json.Marshal(struct { // three strings always marshal
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, kid, typ})
	return base64.RawURLEncoding.EncodeToString(h)
}

// signKey signs one kind of token with one key. Exactly one of mac and priv is
// set, as alg says.
type signKey struct {
	kid    string
	alg    string
	header string // constant per key, so encoded once
	mac    *macPool
	priv   *privateKey
}

func newSignKey(alg, kid, typ string, mac *macPool, priv *privateKey) *signKey {
	return &signKey{kid: kid, alg: alg, header: encodeHeader(alg, kid, typ), mac: mac, priv: priv}
}

// sign returns header.payload.signature for the JSON payload.
func (k *signKey) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	n := len(k.header) + 1 + enc.EncodedLen(len(payload))
	if n > MaxSize {
		return "", ErrTooLarge
	}
	b := make([]byte, n, n+1+enc.EncodedLen(64)) // 64: the longest signature (EdDSA, ES256)
	copy(b, k.header)
	b[len(k.header)] = '.'
	enc.Encode(b[len(k.header)+1:], payload)
	var buf [64]byte
	var sig []byte
	var err error
	switch k.alg {
	case algHS256:
		sig = k.mac.sum(buf[:0], b)
	case algEdDSA:
		sig = ed25519.Sign(k.priv.ed, b)
	case algES256:
		sig, err = signES256(buf[:0], k.priv.ec, b)
	default:
		err = errors.New("unknown algorithm " + k.alg)
	}
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	if len(b) > MaxSize {
		return "", ErrTooLarge
	}
	return string(b), nil
}

// signES256 appends the ES256 signature of msg: deterministic (RFC 6979) and
// with the low S of the two valid ones, so that a pass has one signature.
func signES256(dst []byte, key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	der, err := key.Sign(nil, h[:], crypto.SHA256) // nil: deterministic
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
		return nil, errors.New("ecdsa returned a malformed signature")
	}
	if rs.S.Cmp(new(big.Int).SetBytes(p256HalfOrder[:])) > 0 {
		rs.S.Sub(elliptic.P256().Params().N, rs.S)
	}
	var sig [64]byte
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return append(dst, sig[:]...), nil
}

// privateKey is a pass signer's private key, kept behind a pointer so that
// printing the structs holding it shows an address, never the key.
type privateKey struct {
	ed ed25519.PrivateKey
	ec *ecdsa.PrivateKey
}

// macPool keeps keyed HMAC-SHA256 states for one key: keying one costs about
// what MACing a token does, and the admitted path verifies a pass on every
// request.
type macPool struct {
	pool sync.Pool
}

type macState struct {
	h   hash.Hash
	msg []byte // tokens arrive as strings and hash.Hash takes bytes
	sum [sha256.Size]byte
}

func newMACPool(key []byte) *macPool {
	key = append([]byte(nil), key...)
	m := &macPool{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key)} }
	return m
}

// sum appends the MAC of msg to dst.
func (m *macPool) sum(dst, msg []byte) []byte {
	st := m.pool.Get().(*macState)
	st.h.Reset()
	st.h.Write(msg)
	dst = st.h.Sum(dst)
	m.pool.Put(st)
	return dst
}

// equal reports, in constant time, whether sig is the MAC of msg.
func (m *macPool) equal(msg string, sig []byte) bool {
	st := m.pool.Get().(*macState)
	st.h.Reset()
	st.msg = append(st.msg[:0], msg...)
	st.h.Write(st.msg)
	ok := hmac.Equal(st.h.Sum(st.sum[:0]), sig)
	m.pool.Put(st)
	return ok
}
