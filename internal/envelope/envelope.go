// Package envelope seals small secrets at rest (credentials, external IDs,
// verification tokens kept in Redis) in an AES-256-GCM envelope bound to
// who and what they belong to, under a list of keys that rotates: the first
// key seals, every key opens.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sealed envelope layout: version (1 byte) | key id (4 bytes) | nonce (12) |
// AES-256-GCM ciphertext+tag. The key id lets open pick the right key
// directly instead of trying every key, and it is derived from the key itself
// (not its position) so reordering the keys during a rotation does not
// orphan anything.
const (
	sealVersion  = 1
	keyIDLen     = 4
	sealOverhead = 1 + keyIDLen + 12 + 16
)

var errUnsealable = errors.New("sealed value does not open")

type sealKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// Sealer seals with the first key and opens with any.
type Sealer struct {
	keys []sealKey
}

// NewSealer builds the Sealer of keys, newest first: AES-256 keys of 32
// bytes each. With no key, or a key of another length, it returns an error
// naming the key by position (never its bytes) and nothing can be sealed.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no sealing key configured")
	}
	s := &Sealer{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("sealing key %d is %d bytes, want 32 (AES-256)", i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("sealing key %d: %v", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealing key %d: %v", i+1, err)
		}
		var sk sealKey
		// An HMAC under the key itself: a stable, non-reversible tag. The
		// label is part of every stored envelope's key id: changing it
		// orphans them all.
		m := hmac.New(sha256.New, k)
		m.Write([]byte("ferry credcache key id"))
		copy(sk.id[:], m.Sum(nil))
		sk.aead = aead
		s.keys = append(s.keys, sk)
	}
	return s, nil
}

// Seal encrypts plaintext under the newest key, binding ad (customer and
// field, from AssociatedData), so a value copied to another customer's key
// does not open.
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	k := s.keys[0]
	out := make([]byte, 1+keyIDLen+12, sealOverhead+len(plaintext))
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	if _, err := rand.Read(out[1+keyIDLen:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return k.aead.Seal(out, out[1+keyIDLen:], plaintext, ad)
}

// Open returns the plaintext, or an error for anything that is not an
// authentic envelope under one of the keys with this ad: tampered,
// truncated, sealed under a key no longer configured, or bound to another
// customer or field.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, errUnsealable
	}
	id := sealed[1 : 1+keyIDLen]
	nonce := sealed[1+keyIDLen : 1+keyIDLen+12]
	for _, k := range s.keys {
		// More than one key may share a 4-byte id (1 in 2^32); try each.
		if !hmac.Equal(k.id[:], id) {
			continue
		}
		if pt, err := k.aead.Open(nil, nonce, sealed[1+keyIDLen+12:], ad); err == nil {
			return pt, nil
		}
	}
	return nil, errUnsealable
}

// ParseKeys decodes a key list: one or more base64 (standard or URL, padded
// or not) 32-byte keys separated by commas, newest first. The first key
// seals; all open, so rotating means prepending a new key and dropping the
// old one once every sealed value has expired or been rewritten. Errors name
// the key by position and never echo key material.
func ParseKeys(spec string) ([][]byte, error) {
	var keys [][]byte
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := decodeBase64(part)
		if err != nil {
			return nil, fmt.Errorf("sealing key %d is not base64", i+1)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("sealing key %d decodes to %d bytes, want 32 (AES-256)", i+1, len(k))
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no sealing key configured")
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// AssociatedData is what a sealed value is bound to: a domain (the field or
// role of the value), the customer, NUL-separated (NUL cannot occur in a
// valid customer ID), so no sealed value can be replayed under another
// customer or in another role. Stored envelopes carry it: changing the
// format orphans them.
func AssociatedData(domain, customerID string) []byte {
	return []byte("ferry/" + domain + "/v1\x00" + customerID)
}
