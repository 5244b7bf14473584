package envelope

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// fuzzKeys are fixed so the committed corpus replays identically: the
// current key and one being rotated out.
func fuzzKeys() (cur, old []byte) {
	a := sha256.Sum256([]byte("ferry fuzz key current"))
	b := sha256.Sum256([]byte("ferry fuzz key old"))
	return a[:], b[:]
}

// FuzzOpenSealed feeds arbitrary bytes to the unsealer, as a tampered,
// truncated or foreign Redis value would reach it. Open must never panic,
// and must refuse everything that is not an authentic envelope: the fuzzer
// cannot forge AES-GCM, so any success on mutated input is a bug in the
// envelope handling (a length check, a key-id shortcut, a version skip).
func FuzzOpenSealed(f *testing.F) {
	cur, old := fuzzKeys()
	s, err := NewSealer([][]byte{cur, old})
	if err != nil {
		f.Fatal(err)
	}
	// Fuzzing runs the target in several processes; the genuine seeds use
	// a fixed nonce so every process knows the same authentic values.
	genuine := sealFixedNonce(s.keys[0], []byte(`{"akid":"ASIAFUZZ","secret":"x"}`), AssociatedData("creds", "acme"))
	rotated := sealFixedNonce(s.keys[1], []byte(`{"akid":"ASIAOLD","secret":"y"}`), AssociatedData("creds", "acme"))
	f.Add(genuine, "acme")
	f.Add(rotated, "acme")
	f.Add(genuine[:sealOverhead], "acme")
	f.Add([]byte{}, "")
	f.Add([]byte{sealVersion, 0, 0, 0, 0}, "acme")
	f.Add(bytes.Repeat([]byte{0}, sealOverhead+8), "acme")
	f.Add([]byte(`{"akid":"ASIAFUZZ","secret":"plaintext stored by mistake"}`), "acme")
	f.Fuzz(func(t *testing.T, sealed []byte, customer string) {
		ad := AssociatedData("creds", customer)
		pt, err := s.Open(sealed, ad)
		if err == nil {
			// Only the two genuine seeds open, and only under their own
			// associated data.
			if !((bytes.Equal(sealed, genuine) || bytes.Equal(sealed, rotated)) && customer == "acme") {
				t.Fatalf("open accepted a forged value %x for customer %q: %q", sealed, customer, pt)
			}
			return
		}
		if !errors.Is(err, errUnsealable) || pt != nil {
			t.Fatalf("open = %q, %v; want nil, errUnsealable", pt, err)
		}
	})
}

// sealFixedNonce builds the envelope Seal builds, with a constant nonce.
func sealFixedNonce(k sealKey, plain, ad []byte) []byte {
	out := make([]byte, 1+keyIDLen+12, sealOverhead+len(plain))
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	copy(out[1+keyIDLen:], "fuzz-nonce-1")
	return k.aead.Seal(out, out[1+keyIDLen:], plain, ad)
}

// FuzzSealRoundTrip seals arbitrary plaintexts for arbitrary customers and
// checks the properties the Redis values rely on: the value opens to the
// same bytes under the same customer, never under another customer or
// field, never after any single bit flips, and never contains the plaintext.
func FuzzSealRoundTrip(f *testing.F) {
	cur, old := fuzzKeys()
	s, err := NewSealer([][]byte{cur, old})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"akid":"ASIAEXAMPLE","secret":"s3cr3t","token":"tok"}`), "acme", uint16(3))
	f.Add([]byte("ferry-dev-acme-7c1e0b52d9a4"), "initech", uint16(0))
	f.Add([]byte{}, "", uint16(65535))
	f.Fuzz(func(t *testing.T, plain []byte, customer string, flip uint16) {
		ad := AssociatedData("creds", customer)
		sealed := s.Seal(plain, ad)
		if len(sealed) != len(plain)+sealOverhead {
			t.Fatalf("sealed %d bytes for %d of plaintext", len(sealed), len(plain))
		}
		if len(plain) >= 8 && bytes.Contains(sealed, plain) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed, ad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		if _, err := s.Open(sealed, AssociatedData("creds", customer+"x")); err == nil {
			t.Fatalf("opened under another customer")
		}
		if _, err := s.Open(sealed, AssociatedData("denied", customer)); err == nil {
			t.Fatalf("opened as another field")
		}
		bit := int(flip) % (len(sealed) * 8)
		tampered := bytes.Clone(sealed)
		tampered[bit/8] ^= 1 << (bit % 8)
		if _, err := s.Open(tampered, ad); err == nil {
			t.Fatalf("opened after bit %d flipped", bit)
		}
	})
}
