package credcache

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
	mustSealer := func(keys ...[]byte) *sealer {
		s, err := newSealer(keys)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	plain := []byte(`{"akid":"ASIAEXAMPLE","secret":"s3cr3t"}`)
	adAcme := adFor("creds", "acme")

	tamper := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	sealedOld := mustSealer(oldKey).seal(plain, adAcme)

	tests := []struct {
		name   string
		sealed []byte
		opener *sealer
		ad     []byte
		ok     bool
	}{
		{"round trip", sealedOld, mustSealer(oldKey), adAcme, true},
		{"rotation: sealed with old, opened with [new, old]", sealedOld, mustSealer(newKey, oldKey), adAcme, true},
		{"rotation: old key dropped", sealedOld, mustSealer(newKey), adAcme, false},
		{"unrelated key", sealedOld, mustSealer(otherKey), adAcme, false},
		{"other customer as associated data", sealedOld, mustSealer(oldKey), adFor("creds", "acme2"), false},
		{"other field as associated data", sealedOld, mustSealer(oldKey), adFor("denied", "acme"), false},
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
			got, err := tt.opener.open(tt.sealed, tt.ad)
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
	rotated, _ := newSealer([][]byte{newKey, oldKey})
	onlyNew, _ := newSealer([][]byte{newKey})
	sealed := rotated.seal([]byte("x"), adFor("creds", "c"))
	if _, err := onlyNew.open(sealed, adFor("creds", "c")); err != nil {
		t.Fatalf("a value sealed after rotation must open with the new key alone: %v", err)
	}
	again := rotated.seal([]byte("x"), adFor("creds", "c"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same plaintext are identical: nonce not random")
	}
	if bytes.Contains(sealed, []byte("x\x00")) || len(sealed) != sealOverhead+1 {
		t.Fatalf("unexpected envelope length %d", len(sealed))
	}
}

func TestNewSealerKeyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"no keys", nil},
		{"short key", [][]byte{make([]byte, 16)}},
		{"long second key", [][]byte{make([]byte, 32), make([]byte, 33)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newSealer(tt.keys)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want *KeyError", err)
			}
			for _, want := range []string{"openssl rand -base64 32", "FERRY_CACHE_KEY"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
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
				var ke *KeyError
				if !errors.As(err, &ke) {
					t.Fatalf("err = %v, want *KeyError", err)
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
