package boltstore

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// benchStore fills a store with n keys over a few consumers. The fill runs
// without fsync: the benchmarks measure reads.
func benchStore(b *testing.B, n int, format apikey.Format, hasher *apikey.Hasher) (*Store, []string) {
	b.Helper()
	s, _ := openTemp(b)
	b.Cleanup(func() { s.Close() })
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	ctx := context.Background()
	var consumers []string
	for i := range 10 {
		c := &apikey.Consumer{ID: apikey.NewConsumerID(), Name: "bench-" + string(rune('a'+i)), Metadata: map[string]string{"plan": "pro"}, CreatedAt: time.Now()}
		if err := s.CreateConsumer(ctx, c); err != nil {
			b.Fatal(err)
		}
		consumers = append(consumers, c.ID)
	}
	keys := make([]string, n)
	for i := range keys {
		plain, err := format.Generate()
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = plain
		k := &apikey.Key{
			ID: apikey.NewKeyID(), ConsumerID: consumers[i%len(consumers)], Hash: hasher.Hash(plain),
			Hint: apikey.Hint(plain), Scopes: []string{"orders:read", "orders:write"}, Tier: "gold",
			Status: apikey.StatusActive, CreatedAt: time.Now(),
		}
		if err := s.CreateKey(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

func BenchmarkLookupKey(b *testing.B) {
	hasher, err := apikey.NewHasher(nil)
	if err != nil {
		b.Fatal(err)
	}
	s, keys := benchStore(b, 10000, apikey.Format{}, hasher)
	hashes := make([][]byte, len(keys))
	for i, k := range keys {
		hashes[i] = hasher.Hash(k)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := s.LookupKey(ctx, hashes[i%len(hashes)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAuthenticate is the whole store-side cost of one request with an
// API key: format check, peppered hash, lookup.
func BenchmarkAuthenticate(b *testing.B) {
	hasher, err := apikey.NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	format := apikey.Format{}
	s, keys := benchStore(b, 10000, format, hasher)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := keys[i%len(keys)]
		if err := format.Check(key); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.LookupKey(ctx, hasher.Hash(key)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
