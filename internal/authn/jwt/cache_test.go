package jwt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// cacheFixture is a verifier over providers a (skew 30s) and b, with a
// clock the test moves.
type cacheFixture struct {
	v          *Verifier
	srcA, srcB *fakeKeys
	clock      atomic.Int64 // UnixNano
}

func (f *cacheFixture) set(t time.Time) { f.clock.Store(t.UnixNano()) }

func newCacheFixture(t testing.TB, size int) *cacheFixture {
	t.Helper()
	k := keys()
	f := &cacheFixture{
		srcA: &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaA, "rsa"), pub(k.hmac, "hs")}},
		srcB: &fakeKeys{keys: []jose.JSONWebKey{pub(k.rsaB, "rsa-b")}},
	}
	f.set(testNow)
	v, err := NewVerifierWithOptions([]Provider{
		{Name: "a", Issuer: issA, Audiences: []string{aud}, Keys: f.srcA, ClockSkew: 30 * time.Second, MaxLifetime: time.Hour,
			Algorithms: []jose.SignatureAlgorithm{jose.RS256, jose.HS256}},
		{Name: "b", Issuer: issB, Audiences: []string{aud}, Keys: f.srcB},
	}, VerifierOptions{Now: func() time.Time { return time.Unix(0, f.clock.Load()) }, CacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

// cacheLen counts the entries of every provider's cache.
func (v *Verifier) cacheLen() int {
	n := 0
	for _, p := range v.providers {
		if p.cache != nil {
			n += p.cache.len()
		}
	}
	return n
}

func TestCacheHitSkipsVerification(t *testing.T) {
	f := newCacheFixture(t, 0)
	token := sign(t, jose.RS256, keys().rsaA, "rsa", claims(issA, nil))
	ctx := context.Background()
	first := must(f.v.Verify(ctx, token))
	if n := f.v.cacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries, want 1", n)
	}
	if again := must(f.v.Verify(ctx, token)); again != first {
		t.Fatal("a hit returned another identity than the cached one")
	}
	// A full RS256 verification costs well over a hundred allocations; a
	// hit costs the fake key source's lookup at most.
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := f.v.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("a cache hit costs %.0f allocations: not served from the cache", allocs)
	}
	k := cacheKeyOf(token)
	if e, ok := f.v.providers[0].cache.shard(k).m[k]; !ok || e.token != token {
		t.Fatal("the cache is not keyed by the token's keyed hash, or does not keep the token")
	}
	// The identity served from the cache carries the token's SHA-256 for
	// revocation by token hash, computed once, on the miss.
	if first.TokenHash != sha256.Sum256([]byte(token)) {
		t.Fatal("identity.TokenHash is not the token's SHA-256")
	}
}

func TestCacheTimes(t *testing.T) {
	k := keys()
	exp := testNow.Add(5 * time.Minute)
	nbf := testNow.Add(10 * time.Second) // in the future, within the 30s leeway
	const skew = 30 * time.Second
	for _, tc := range []struct {
		name   string
		at     time.Time
		reason authn.Reason // "" accepted
	}{
		{"exp+skew exactly", exp.Add(skew), ""},
		{"just past exp+skew", exp.Add(skew + time.Nanosecond), authn.ReasonExpired},
		{"nbf-skew exactly", nbf.Add(-skew), ""},
		{"just before nbf-skew", nbf.Add(-skew - time.Nanosecond), authn.ReasonNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, 0)
			cold := newCacheFixture(t, -1)
			token := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": exp.Unix(), "nbf": nbf.Unix(), "iat": nbf.Unix()}))
			must(f.v.Verify(context.Background(), token)) // cached at testNow
			f.set(tc.at)
			cold.set(tc.at)
			_, err := f.v.Verify(context.Background(), token)
			_, coldErr := cold.v.Verify(context.Background(), token)
			if reasonOf(err) != tc.reason || reasonOf(coldErr) != tc.reason {
				t.Fatalf("cached: %v; uncached: %v; want reason %q", err, coldErr, tc.reason)
			}
			if tc.reason == authn.ReasonExpired && f.v.cacheLen() != 0 {
				t.Fatal("an expired entry was kept")
			}
		})
	}
}

func TestCacheFailuresNotCached(t *testing.T) {
	f := newCacheFixture(t, 0)
	k := keys()
	ctx := context.Background()
	for _, token := range []string{
		sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"aud": "other"})),
		sign(t, jose.RS256, k.attacker, "rsa", claims(issA, nil)),
		sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"exp": testNow.Add(-time.Hour).Unix()})),
	} {
		if _, err := f.v.Verify(ctx, token); err == nil {
			t.Fatal("accepted")
		}
	}
	f.srcA.err = errUnavailableForTest
	token := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))
	var u *authn.UnavailableError
	if _, err := f.v.Verify(ctx, token); !errors.As(err, &u) {
		t.Fatalf("got %v, want UnavailableError", err)
	}
	if n := f.v.cacheLen(); n != 0 {
		t.Fatalf("%d failures cached", n)
	}
	f.srcA.err = nil
	must(f.v.Verify(ctx, token))
	if n := f.v.cacheLen(); n != 1 {
		t.Fatalf("cache holds %d entries, want 1", n)
	}
}

// TestCacheKeys: a cached token is served only while the key source would
// still let its key verify it.
func TestCacheKeys(t *testing.T) {
	k := keys()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(f *cacheFixture)
		reason authn.Reason
	}{
		{"key removed", func(f *cacheFixture) { f.srcA.keys = f.srcA.keys[1:] }, authn.ReasonUnknownKID},
		{"kid reused for another key", func(f *cacheFixture) { f.srcA.keys[0] = pub(k.rsaB, "rsa") }, authn.ReasonBadSignature},
		{"keys unavailable", func(f *cacheFixture) { f.srcA.err = errUnavailableForTest }, authn.ReasonKeysUnavailable},
		{"same key re-parsed", func(f *cacheFixture) {
			var j jose.JSONWebKey
			if err := j.UnmarshalJSON(must(f.srcA.keys[0].MarshalJSON())); err != nil {
				panic(err)
			}
			f.srcA.keys[0] = j // equal key, new pointer: still a hit
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, 0)
			f.srcA.keys = append([]jose.JSONWebKey(nil), f.srcA.keys...)
			token := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, nil))
			must(f.v.Verify(ctx, token))
			tc.change(f)
			if _, err := f.v.Verify(ctx, token); reasonOf(err) != tc.reason {
				t.Fatalf("got %v, want reason %q", err, tc.reason)
			}
		})
	}
}

func TestCacheBound(t *testing.T) {
	f := newCacheFixture(t, 5)
	k := keys()
	for i := range 50 {
		token := sign(t, jose.HS256, k.hmac, "hs", claims(issA, map[string]any{"jti": fmt.Sprint(i)}))
		for range 2 {
			must(f.v.Verify(context.Background(), token))
		}
		if n := f.v.cacheLen(); n > 5 {
			t.Fatalf("cache holds %d entries, bound is 5", n)
		}
	}
	if n := f.v.cacheLen(); n == 0 {
		t.Fatal("nothing cached")
	}
	if newCacheFixture(t, -1).v.cached {
		t.Fatal("a negative size did not disable the cache")
	}
}

func TestCacheProviderRestriction(t *testing.T) {
	f := newCacheFixture(t, 0)
	token := sign(t, jose.RS256, keys().rsaA, "rsa", claims(issA, nil))
	must(f.v.Verify(context.Background(), token)) // cached, any provider
	onlyB := must(NewAuthenticator(f.v, []string{"b"}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	if _, err := onlyB.Authenticate(r); reasonOf(err) != authn.ReasonProviderDenied {
		t.Fatalf("got %v, want %q", err, authn.ReasonProviderDenied)
	}
	onlyA := must(NewAuthenticator(f.v, []string{"a"}))
	if id, err := onlyA.Authenticate(r); err != nil || id.Provider != "a" {
		t.Fatalf("got %v, %v", id, err)
	}
}

// TestCacheTampered: a variant of a cached token is a different key and is
// verified in full.
func TestCacheTampered(t *testing.T) {
	f := newCacheFixture(t, 0)
	token := sign(t, jose.RS256, keys().rsaA, "rsa", claims(issA, nil))
	must(f.v.Verify(context.Background(), token))
	flip := func(i int) string {
		b := []byte(token)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, variant := range []string{flip(len(token) / 2), flip(len(token) - 10), flip(5), token + "A", token[:len(token)-4]} {
		if id, err := f.v.Verify(context.Background(), variant); err == nil {
			t.Fatalf("tampered token accepted: %+v", id)
		}
	}
	must(f.v.Verify(context.Background(), token))
}

func TestCacheConcurrent(t *testing.T) {
	f := newCacheFixture(t, 4)
	k := keys()
	var tokens []string
	for i := range 8 {
		tokens = append(tokens, sign(t, jose.HS256, k.hmac, "hs", claims(issA, map[string]any{"jti": fmt.Sprint(i)})))
	}
	bad := sign(t, jose.HS256, k.hmac, "hs", claims(issA, map[string]any{"aud": "other"}))
	auth := must(NewAuthenticator(f.v, []string{"b"}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				token := tokens[(g+i)%len(tokens)]
				if _, err := f.v.Verify(context.Background(), token); err != nil {
					t.Error(err)
					return
				}
				if _, err := f.v.Verify(context.Background(), bad); err == nil {
					t.Error("bad token accepted")
					return
				}
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", "Bearer "+token)
				if _, err := auth.Authenticate(r); reasonOf(err) != authn.ReasonProviderDenied {
					t.Errorf("got %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := f.v.cacheLen(); n > 4 {
		t.Fatalf("cache holds %d entries, bound is 4", n)
	}
}

// shard0Cache is a cache of perShard entries a shard whose key function
// sends token "k<n>" to shard 0 (key n×cacheShards): tests drive one shard.
func shard0Cache(perShard int) *TokenCache {
	c := newTokenCache(perShard * cacheShards)
	c.keyOf = func(raw string) uint64 {
		n, _ := strconv.Atoi(strings.TrimPrefix(raw, "k"))
		return uint64(n) * cacheShards
	}
	return c
}

func shard0Has(c *TokenCache, n int) bool {
	_, ok := c.shards[0].m[uint64(n)*cacheShards]
	return ok
}

func tok(n int) string { return "k" + strconv.Itoa(n) }

// TestCacheEvictsByExpiry drives one shard directly: expired entries go
// first, whatever the shard's fill; a full shard drops the entry closest to
// expiry; stale heap items never grow without bound.
func TestCacheEvictsByExpiry(t *testing.T) {
	entry := func(exp time.Time) cacheEntry { return cacheEntry{skew: 30 * time.Second, exp: exp} }
	has := shard0Has
	now := testNow

	c := shard0Cache(3) // three entries a shard
	c.put(tok(1), 0, entry(now.Add(time.Minute)), now)
	c.put(tok(2), 0, entry(now.Add(10*time.Minute)), now)
	// Past key 1's exp but within its leeway: still kept.
	later := now.Add(time.Minute + 20*time.Second)
	c.put(tok(3), 0, entry(now.Add(20*time.Minute)), later)
	if !has(c, 1) {
		t.Fatal("an entry within its clock-skew leeway was evicted")
	}
	// Past exp + skew: the next put on the shard evicts it, though the
	// shard has room.
	later = now.Add(2 * time.Minute)
	c.shards[0].mu.Lock()
	delete(c.shards[0].m, 3*cacheShards) // make room, so only expiry can evict key 1
	c.shards[0].mu.Unlock()
	c.put(tok(4), 0, entry(now.Add(30*time.Minute)), later)
	if has(c, 1) {
		t.Fatal("an expired entry survived a put on its shard")
	}
	if !has(c, 2) || !has(c, 4) {
		t.Fatal("a live entry was evicted while there was room")
	}

	// Full of live entries: the one expiring first makes room.
	c.put(tok(5), 0, entry(now.Add(40*time.Minute)), later)
	c.put(tok(6), 0, entry(now.Add(50*time.Minute)), later)
	if has(c, 2) || !has(c, 4) || !has(c, 5) || !has(c, 6) {
		t.Fatalf("full shard evicted the wrong entry: %v", c.shards[0].m)
	}

	// The same token stored again and again leaves stale items behind;
	// the heap is rebuilt before it exceeds twice the shard's size.
	for i := range 100 {
		c.put(tok(6), 0, entry(now.Add(time.Duration(50+i)*time.Minute)), later)
		if n := len(c.shards[0].byExpiry); n > 2*c.shards[0].limit+1 {
			t.Fatalf("expiry heap grew to %d items for %d entries", n, len(c.shards[0].m))
		}
	}
	if len(c.shards[0].m) != 3 {
		t.Fatalf("shard holds %d entries, want 3", len(c.shards[0].m))
	}
}

// TestCacheEvictionTieKeepsNewest (issue 16, item 5): when every token
// shares one exp (minted in the same second), a full shard evicts the
// oldest entries and keeps the newest. The heap used to break the tie the
// other way: it kept the first entries stored and churned the newest.
func TestCacheEvictionTieKeepsNewest(t *testing.T) {
	now := testNow
	exp := now.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		perShard   int
		stored     int
		rebuildsAt int // 0: never rebuilt by hand
	}{
		{"one over", 4, 5, 0},
		{"many over", 4, 40, 0},
		{"large shard", 100, 1000, 0},
		{"after a heap rebuild", 8, 50, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := shard0Cache(tc.perShard)
			for i := 1; i <= tc.stored; i++ {
				c.put(tok(i), 0, cacheEntry{exp: exp}, now)
				if i == tc.rebuildsAt {
					c.shards[0].mu.Lock()
					c.shards[0].rebuild()
					c.shards[0].mu.Unlock()
				}
			}
			if n := len(c.shards[0].m); n != tc.perShard {
				t.Fatalf("shard holds %d entries, want %d", n, tc.perShard)
			}
			for i := 1; i <= tc.stored; i++ {
				want := i > tc.stored-tc.perShard // the newest perShard survive
				if has := shard0Has(c, i); has != want {
					t.Fatalf("token %d of %d: cached %v, want %v (the newest %d must survive)", i, tc.stored, has, want, tc.perShard)
				}
			}
		})
	}
	// Through the verifier: tokens with one exp, more than the cache
	// holds; the last one stored is served from the cache.
	f := newCacheFixture(t, cacheShards) // one entry a shard
	k := keys()
	var hits int
	f.v.onCache = func(hit bool) {
		if hit {
			hits++
		}
	}
	var last string
	for i := range 5 * cacheShards {
		last = sign(t, jose.HS256, k.hmac, "hs", claims(issA, map[string]any{"jti": fmt.Sprint(i), "exp": testNow.Add(30 * time.Minute).Unix()}))
		must(f.v.Verify(context.Background(), last))
	}
	must(f.v.Verify(context.Background(), last))
	if hits != 1 {
		t.Fatal("the newest token was evicted in favour of older ones with the same exp")
	}
}

// TestCacheCollision: a token whose key collides with a cached token's
// (forced here: every token gets key 0) is never served the other token's
// identity; it is verified in full and, if valid, takes the entry over.
func TestCacheCollision(t *testing.T) {
	f := newCacheFixture(t, 0)
	for _, p := range f.v.providers {
		p.cache.keyOf = func(string) uint64 { return 0 }
	}
	k := keys()
	ctx := context.Background()
	var hits, misses int
	f.v.onCache = func(hit bool) {
		if hit {
			hits++
		} else {
			misses++
		}
	}
	alice := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": "alice"}))
	bob := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": "bob"}))
	forged := sign(t, jose.RS256, k.attacker, "rsa", claims(issA, map[string]any{"sub": "mallory"}))
	if id := must(f.v.Verify(ctx, alice)); id.Subject != "alice" {
		t.Fatal(id.Subject)
	}
	// Same key, different token: a miss, then full verification.
	if _, err := f.v.Verify(ctx, forged); reasonOf(err) != authn.ReasonBadSignature {
		t.Fatalf("a forged token colliding with a cached one: %v", err)
	}
	if id := must(f.v.Verify(ctx, alice)); id.Subject != "alice" || hits != 1 {
		t.Fatalf("alice after a failed collision: %s, %d hits", id.Subject, hits)
	}
	if id := must(f.v.Verify(ctx, bob)); id.Subject != "bob" {
		t.Fatalf("bob, colliding with alice, was served %q", id.Subject)
	}
	if id := must(f.v.Verify(ctx, bob)); id.Subject != "bob" || hits != 2 {
		t.Fatalf("bob again: %s, %d hits", id.Subject, hits)
	}
	// A prefix or an extension of the cached token collides too, and misses.
	for _, variant := range []string{bob[:len(bob)-1], bob + "A", ""} {
		if _, err := f.v.Verify(ctx, variant); err == nil {
			t.Fatalf("variant %q of a cached token accepted", variant)
		}
	}
	if id := must(f.v.Verify(ctx, alice)); id.Subject != "alice" {
		t.Fatalf("alice, colliding with bob, was served %q", id.Subject)
	}
	if misses != 6+1 || f.v.cacheLen() != 1 {
		t.Fatalf("%d misses (want 7), %d entries (want 1)", misses, f.v.cacheLen())
	}
}

// TestCacheLongTokenNotCached: a token over MaxCachedTokenBytes verifies
// but is not remembered (the cache's memory bound); one at the limit is.
func TestCacheLongTokenNotCached(t *testing.T) {
	k := keys()
	for _, tc := range []struct {
		name   string
		pad    func(base int) int // claim padding for a token of the wanted size
		cached bool
	}{
		{"at the limit", func(base int) int { return MaxCachedTokenBytes - base }, true},
		{"one byte over", func(base int) int { return MaxCachedTokenBytes - base + 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, 0)
			// A claim's value grows the payload by 4 base64 chars per 3
			// bytes: search the padding that gives the exact length.
			padded := func(n int) string {
				return sign(t, jose.HS256, k.hmac, "hs", claims(issA, map[string]any{"pad": strings.Repeat("x", n)}))
			}
			want := MaxCachedTokenBytes + tc.pad(MaxCachedTokenBytes)
			token := padded(0)
			for n := (want-len(token))*3/4 - 4; len(token) < want; n++ {
				token = padded(n)
			}
			if len(token) != want {
				t.Fatalf("no padding gives a token of exactly %d bytes (got %d)", want, len(token))
			}
			must(f.v.Verify(context.Background(), token))
			if got := f.v.cacheLen() == 1; got != tc.cached {
				t.Fatalf("token of %d bytes: cached %v, want %v", len(token), got, tc.cached)
			}
		})
	}
}

// TestCacheInvalidateSubject: only the subject's entries (of the issuer,
// or of any issuer with "") are dropped, across shards.
func TestCacheInvalidateSubject(t *testing.T) {
	now := testNow
	type tok struct{ iss, sub string }
	toks := []tok{{"a", "alice"}, {"b", "alice"}, {"a", "bob"}, {"a", "alice"}}
	fill := func() *TokenCache {
		c := newTokenCache(64 * cacheShards)
		for i, tk := range toks {
			raw := fmt.Sprint("token-", i) // several shards (or not: it does not matter)
			c.put(raw, cacheKeyOf(raw), cacheEntry{id: &identity.Identity{Issuer: tk.iss, Subject: tk.sub}, exp: now.Add(time.Hour)}, now)
		}
		return c
	}
	for _, tc := range []struct {
		name, iss, sub string
		dropped, left  int
	}{
		{"one issuer", "a", "alice", 2, 2},
		{"any issuer", "", "alice", 3, 1},
		{"unknown subject", "a", "carol", 0, 4},
		{"other issuer", "c", "alice", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fill()
			if n := c.InvalidateSubject(tc.iss, tc.sub); n != tc.dropped {
				t.Fatalf("dropped %d, want %d", n, tc.dropped)
			}
			if c.len() != tc.left {
				t.Fatalf("%d entries left, want %d", c.len(), tc.left)
			}
		})
	}
}

// TestCacheHitRevokedByTokenHash: revocation by token hash (the SHA-256 a
// token-kind entry names) stops a token whether it is verified in full or
// served from the cache, which no longer hashes with SHA-256: the hash
// travels with the cached identity.
func TestCacheHitRevokedByTokenHash(t *testing.T) {
	f := newCacheFixture(t, 0)
	k := keys()
	ctx := context.Background()
	revoked := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": "alice"}))
	other := sign(t, jose.RS256, k.rsaA, "rsa", claims(issA, map[string]any{"sub": "alice", "jti": "another"}))
	sum := sha256.Sum256([]byte(revoked))
	var list revocation.List
	list.Now = func() time.Time { return testNow }
	list.Replace([]*revocation.Entry{{ID: "r_1", Kind: revocation.KindToken, Value: revocation.TokenHash(sum),
		CreatedAt: testNow, ExpiresAt: testNow.Add(time.Hour)}})
	var hits int
	f.v.onCache = func(hit bool) {
		if hit {
			hits++
		}
	}
	for i, tc := range []struct {
		token   string
		revoked bool
	}{
		{revoked, true}, {revoked, true}, {other, false}, {other, false}, {revoked, true},
	} {
		id := must(f.v.Verify(ctx, tc.token))
		e, loaded := list.Check(id)
		if !loaded || (e != nil) != tc.revoked {
			t.Fatalf("request %d: revoked %v, want %v", i, e != nil, tc.revoked)
		}
	}
	if hits != 3 {
		t.Fatalf("%d cache hits, want 3: the revocation check must hold on hits", hits)
	}
}
