package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestNewHasher(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pepper []byte
		scheme string
	}{
		{"nil pepper", nil, SchemeSHA256},
		{"empty pepper", []byte{}, SchemeSHA256},
		{"short pepper", bytes.Repeat([]byte{1}, MinPepperLen-1), ""},
		{"minimum pepper", bytes.Repeat([]byte{1}, MinPepperLen), SchemeHMACSHA256},
		{"long pepper", bytes.Repeat([]byte{1}, 100), SchemeHMACSHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHasher(tc.pepper)
			if tc.scheme == "" {
				if !errors.Is(err, ErrInvalidPepper) {
					t.Fatalf("NewHasher error = %v, want ErrInvalidPepper", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Scheme(); got != tc.scheme {
				t.Fatalf("Scheme = %q, want %q", got, tc.scheme)
			}
		})
	}
	var nilHasher *Hasher
	if nilHasher.Scheme() != SchemeSHA256 || len(nilHasher.Hash("x")) != sha256.Size {
		t.Fatal("nil Hasher is not plain SHA-256")
	}
}

func TestHash(t *testing.T) {
	pepper := []byte(strings.Repeat("p", 32))
	plain, err := NewHasher(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewHasher([]byte(strings.Repeat("q", 32)))
	if err != nil {
		t.Fatal(err)
	}
	key := "gate_live_example"

	// Known answers, computed with the standard library directly.
	want := sha256.Sum256([]byte(key))
	if got := plain.Hash(key); !bytes.Equal(got, want[:]) {
		t.Fatalf("SHA-256 hash = %x, want %x", got, want)
	}
	// Fixed vector so an accidental change of the scheme (which would lock
	// every key out) fails loudly.
	if got, want := hex.EncodeToString(plain.Hash("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("SHA-256(abc) = %s, want %s", got, want)
	}
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(key))
	if got := keyed.Hash(key); !bytes.Equal(got, m.Sum(nil)) {
		t.Fatalf("HMAC hash = %x, want %x", got, m.Sum(nil))
	}

	if bytes.Equal(plain.Hash(key), keyed.Hash(key)) {
		t.Fatal("HMAC and SHA-256 hashes are equal")
	}
	if bytes.Equal(keyed.Hash(key), other.Hash(key)) {
		t.Fatal("different peppers give the same hash")
	}
	if !bytes.Equal(keyed.Hash(key), keyed.Hash(key)) || !bytes.Equal(plain.Hash(key), plain.Hash(key)) {
		t.Fatal("hash is not stable")
	}
	if bytes.Equal(keyed.Hash(key), keyed.Hash(key+"x")) {
		t.Fatal("different keys hash equal")
	}
	// The pepper is copied: changing the caller's slice changes nothing.
	before := keyed.Hash(key)
	pepper[0] = 'z'
	if !bytes.Equal(before, keyed.Hash(key)) {
		t.Fatal("Hasher shares the caller's pepper slice")
	}
}

func TestHashConcurrent(t *testing.T) {
	h, err := NewHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	want := h.Hash("k")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if got := h.Hash("k"); !bytes.Equal(got, want) {
					t.Error("concurrent Hash differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkHash(b *testing.B) {
	key := mustGenerate(b, Format{})
	for _, bc := range []struct {
		name   string
		pepper []byte
	}{
		{"sha256", nil},
		{"hmac-sha256", bytes.Repeat([]byte{7}, 32)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := NewHasher(bc.pepper)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = h.Hash(key)
			}
		})
	}
}
