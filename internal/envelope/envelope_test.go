package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func randKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	oldKey, newKey, otherKey := randKey(t), randKey(t), randKey(t)
	mustSealer := func(keys ...[]byte) *Sealer {
		s, err := NewSealer(keys)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain := []byte(`{"akid":"ASIAEXAMPLE","secret":"s3cr3t"}`)
	adAcme := AssociatedData("creds", "acme")

	tamper := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	sealedOld := mustSealer(oldKey).Seal(plain, adAcme)

	tests := []struct {
		name   string
		sealed []byte
		opener *Sealer
		ad     []byte
		ok     bool
	}{
		{"round trip", sealedOld, mustSealer(oldKey), adAcme, true},
		{"rotation: sealed with old, opened with [new, old]", sealedOld, mustSealer(newKey, oldKey), adAcme, true},
		{"rotation: old key dropped", sealedOld, mustSealer(newKey), adAcme, false},
		{"unrelated key", sealedOld, mustSealer(otherKey), adAcme, false},
		{"other customer as associated data", sealedOld, mustSealer(oldKey), AssociatedData("creds", "acme2"), false},
		{"other field as associated data", sealedOld, mustSealer(oldKey), AssociatedData("denied", "acme"), false},
		{"ciphertext byte flipped", tamper(sealedOld, len(sealedOld)-20), mustSealer(oldKey), adAcme, false},
		{"tag byte flipped", tamper(sealedOld, len(sealedOld)-1), mustSealer(oldKey), adAcme, false},
		{"key id flipped", tamper(sealedOld, 1), mustSealer(oldKey), adAcme, false},
		{"version flipped", tamper(sealedOld, 0), mustSealer(oldKey), adAcme, false},
		{"truncated", sealedOld[:sealOverhead-1], mustSealer(oldKey), adAcme, false},
		{"empty", nil, mustSealer(oldKey), adAcme, false},
		{"plaintext stored by mistake", plain, mustSealer(oldKey), adAcme, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.opener.Open(tt.sealed, tt.ad)
			if tt.ok {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("open = %q, %v; want the plaintext", got, err)
				}
				return
			}
			if !errors.Is(err, errUnsealable) || got != nil {
				t.Fatalf("open = %q, %v; want errUnsealable", got, err)
			}
		})
	}
}

func TestSealNewKeySeals(t *testing.T) {
	t.Parallel()
	oldKey, newKey := randKey(t), randKey(t)
	rotated, _ := NewSealer([][]byte{newKey, oldKey})
	onlyNew, _ := NewSealer([][]byte{newKey})
	sealed := rotated.Seal([]byte("x"), AssociatedData("creds", "c"))
	if _, err := onlyNew.Open(sealed, AssociatedData("creds", "c")); err != nil {
		t.Fatalf("a value sealed after rotation must open with the new key alone: %v", err)
	}
	again := rotated.Seal([]byte("x"), AssociatedData("creds", "c"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same plaintext are identical: nonce not random")
	}
	if bytes.Contains(sealed, []byte("x\x00")) || len(sealed) != sealOverhead+1 {
		t.Fatalf("unexpected envelope length %d", len(sealed))
	}
}

// The errors name the bad key by position; credcache wraps them in its
// KeyError, which says how to make a good one.
func TestNewSealerKeyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{"no keys", nil, "no sealing key configured"},
		{"short key", [][]byte{make([]byte, 16)}, "sealing key 1 is 16 bytes, want 32"},
		{"long second key", [][]byte{make([]byte, 32), make([]byte, 33)}, "sealing key 2 is 33 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSealer(tt.keys)
			if err == nil || s != nil {
				t.Fatalf("NewSealer = %v, %v; want nil and an error", s, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := randKey(t), randKey(t)
	std, url := base64.StdEncoding.EncodeToString(k1), base64.RawURLEncoding.EncodeToString(k2)
	tests := []struct {
		name string
		spec string
		want [][]byte
	}{
		{"one std", std, [][]byte{k1}},
		{"two, mixed encodings, spaces", " " + std + " , " + url + ",", [][]byte{k1, k2}},
		{"empty", "", nil},
		{"not base64", "!!!", nil},
		{"16 bytes", base64.StdEncoding.EncodeToString(make([]byte, 16)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKeys(tt.spec)
			if tt.want == nil {
				if err == nil || got != nil {
					t.Fatalf("ParseKeys = %d keys, %v; want an error", len(got), err)
				}
				if strings.Contains(err.Error(), tt.spec) && tt.spec != "" {
					t.Fatalf("error %q echoes the key material", err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("ParseKeys = %d keys, %v", len(got), err)
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
}
