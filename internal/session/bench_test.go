package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/redisconn/redistest"
	"github.com/gatehouse/gatehouse/internal/session"
)

// BenchmarkOpen is the codec's share of a session request: opening a
// typical (~2.5 KB) sealed session.
func BenchmarkOpen(b *testing.B) {
	c := newCodec(b, newKey(b), newKey(b))
	pt, err := typicalSession(b).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	v, _ := c.Seal("__Host-gatehouse", pt)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open("__Host-gatehouse", v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal is the cost of writing the cookie again (login,
// refresh).
func BenchmarkSeal(b *testing.B) {
	c := newCodec(b, newKey(b))
	pt, _ := typicalSession(b).Marshal()
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal("__Host-gatehouse", pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenCookieSession is everything a cookie-only session costs
// per request in this package: read the chunks from the Cookie header,
// open, unmarshal.
func BenchmarkOpenCookieSession(b *testing.B) {
	c := newCodec(b, newKey(b))
	opts := session.DefaultCookieOptions()
	pt, _ := typicalSession(b).Marshal()
	v, _ := c.Seal(opts.Name, pt)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", "_ga=GA1.2.3; theme=dark")
	for _, ck := range session.WriteCookies(r, opts, v) {
		r.AddCookie(ck)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, ok := session.ReadCookies(r, opts.Name)
		if !ok {
			b.Fatal("no cookie")
		}
		p, err := c.Open(opts.Name, v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := session.Unmarshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshal is the decoding share of BenchmarkOpenCookieSession.
func BenchmarkUnmarshal(b *testing.B) {
	pt, _ := typicalSession(b).Marshal()
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := session.Unmarshal(pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisStoreLoad is a server-side session's lookup: one GET on
// the real Redis, open, unmarshal.
func BenchmarkRedisStoreLoad(b *testing.B) {
	c := redistest.Client(b)
	store := session.NewRedisStore(c.Redis(), c.Prefix(), session.WithCodec(newCodec(b, newKey(b))))
	s := typicalSession(b)
	ctx := context.Background()
	if err := store.Save(ctx, s, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := store.Load(ctx, s.ID); err != nil {
			b.Fatal(err)
		}
	}
}
