package session_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/session"
)

// browser plays a cookie jar: it applies Set-Cookie the way a browser
// does (Max-Age<0 deletes) and sends what it holds.
type browser map[string]string

func (b browser) apply(cs []*http.Cookie) {
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(b, c.Name)
		} else {
			b[c.Name] = c.Value
		}
	}
}

func (b browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://gw.example/", nil)
	for n, v := range b {
		r.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	return r
}

func sealedOfLen(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var b strings.Builder
	for i := range n {
		b.WriteByte(alphabet[(i*7+i/64)%64])
	}
	return b.String()
}

func TestCookieChunkRoundTrip(t *testing.T) {
	opts := session.DefaultCookieOptions()
	opts.MaxChunk = 1000
	for _, tc := range []struct {
		name   string
		n      int
		chunks int
	}{
		{"one byte", 1, 1},
		{"exactly one chunk", 1000, 1},
		{"one over", 1001, 2},
		{"two full", 1998, 2},
		{"three", 2500, 3},
		{"maximum", opts.MaxValueLen(), session.MaxChunks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := sealedOfLen(tc.n)
			jar := browser{}
			cs := session.WriteCookies(jar.request(), opts, v)
			if len(cs) != tc.chunks {
				t.Fatalf("%d cookies, want %d", len(cs), tc.chunks)
			}
			for i, c := range cs {
				if want := opts.Name + map[bool]string{true: "", false: "." + strconv.Itoa(i)}[i == 0]; c.Name != want {
					t.Fatalf("cookie %d named %q, want %q", i, c.Name, want)
				}
				if !c.HttpOnly || !c.Secure || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.Domain != "" {
					t.Fatalf("cookie %s attributes: %s", c.Name, c.String())
				}
				if len(c.Value) > opts.MaxChunk {
					t.Fatalf("cookie %s holds %d bytes, over MaxChunk %d", c.Name, len(c.Value), opts.MaxChunk)
				}
				if err := c.Valid(); err != nil {
					t.Fatalf("cookie %s: %v", c.Name, err)
				}
			}
			jar.apply(cs)
			got, ok := session.ReadCookies(jar.request(), opts.Name)
			if !ok || got != v {
				t.Fatalf("ReadCookies = %d bytes, %v; want %d bytes", len(got), ok, len(v))
			}
		})
	}
}

func TestCookieHeaderFits(t *testing.T) {
	// With the defaults a full chunk and its attributes stay under the
	// 4096 bytes browsers keep per cookie.
	opts := session.DefaultCookieOptions()
	opts.MaxAge = 24 * time.Hour
	for _, c := range session.WriteCookies(browser{}.request(), opts, sealedOfLen(opts.MaxValueLen())) {
		if n := len(c.String()); n > 4096 {
			t.Fatalf("Set-Cookie for %s is %d bytes", c.Name, n)
		}
		if c.MaxAge != 86400 {
			t.Fatalf("MaxAge %d", c.MaxAge)
		}
	}
}

func TestCookieLeftoverChunksExpire(t *testing.T) {
	opts := session.DefaultCookieOptions()
	opts.MaxChunk = 500
	jar := browser{}
	jar.apply(session.WriteCookies(jar.request(), opts, sealedOfLen(2200))) // 5 chunks
	if len(jar) != 5 {
		t.Fatalf("jar holds %d cookies, want 5", len(jar))
	}
	for _, tc := range []struct {
		name      string
		n         int
		wantJar   int
		wantClear int
	}{
		{"shrink to three", 1200, 3, 2},
		{"shrink to one", 100, 1, 2},
		{"grow again", 3000, 7, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := sealedOfLen(tc.n)
			cs := session.WriteCookies(jar.request(), opts, v)
			expired := 0
			for _, c := range cs {
				if c.MaxAge < 0 {
					expired++
					if !c.Secure || c.Path != "/" || !c.HttpOnly {
						t.Fatalf("expiring %s without the attributes a __Host- cookie needs: %s", c.Name, c.String())
					}
				}
			}
			if expired != tc.wantClear {
				t.Fatalf("%d cookies expired, want %d", expired, tc.wantClear)
			}
			jar.apply(cs)
			if len(jar) != tc.wantJar {
				t.Fatalf("jar holds %d cookies, want %d", len(jar), tc.wantJar)
			}
			if got, ok := session.ReadCookies(jar.request(), opts.Name); !ok || got != v {
				t.Fatalf("ReadCookies after rewrite: ok=%v, equal=%v", ok, got == v)
			}
		})
	}
	jar.apply(session.ClearCookies(jar.request(), opts))
	if len(jar) != 0 {
		t.Fatalf("after ClearCookies the jar still holds %v", len(jar))
	}
	if _, ok := session.ReadCookies(jar.request(), opts.Name); ok {
		t.Fatal("ReadCookies found a value after ClearCookies")
	}
}

func TestCookieTooLargeOrBadValueIsNotWritten(t *testing.T) {
	opts := session.DefaultCookieOptions()
	jar := browser{}
	jar.apply(session.WriteCookies(jar.request(), opts, sealedOfLen(5000)))
	for _, v := range []string{"", sealedOfLen(opts.MaxValueLen() + 1), "abc;def", "abc def", "a~b"} {
		cs := session.WriteCookies(jar.request(), opts, v)
		for _, c := range cs {
			if c.MaxAge >= 0 {
				t.Fatalf("value of %d bytes: cookie %s set instead of cleared", len(v), c.Name)
			}
		}
		if len(cs) != 2 {
			t.Fatalf("value of %d bytes: %d cookies, want both chunks expired", len(v), len(cs))
		}
	}
}

func TestReadCookiesRefuses(t *testing.T) {
	const name = "__Host-gatehouse"
	full := sealedOfLen(300)
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
		ok      bool
	}{
		{"absent", nil, "", false},
		{"other cookie", []string{"other=abc"}, "", false},
		{"single", []string{name + "=" + full}, full, true},
		{"quoted", []string{name + `="` + full + `"`}, full, true},
		{"among others, two header lines", []string{"a=1; " + name + "=2~abc", "x=y; " + name + ".1=def"}, "abcdef", true},
		{"extra chunks past the count ignored", []string{name + "=2~abc; " + name + ".1=def; " + name + ".2=ghi"}, "abcdef", true},
		{"empty value", []string{name + "="}, "", false},
		{"duplicate name", []string{name + "=abc; " + name + "=abd"}, "", false},
		{"duplicate chunk", []string{name + "=2~abc; " + name + ".1=def; " + name + ".1=xyz"}, "", false},
		{"missing chunk", []string{name + "=3~abc; " + name + ".1=def"}, "", false},
		{"empty chunk", []string{name + "=2~abc; " + name + ".1="}, "", false},
		{"chunk without head", []string{name + ".1=def"}, "", false},
		{"count 1", []string{name + "=1~abc"}, "", false},
		{"count 9", []string{name + "=9~abc"}, "", false},
		{"count 10", []string{name + "=10~abc"}, "", false},
		{"count not a digit", []string{name + "=x~abc"}, "", false},
		{"non-base64url", []string{name + "=ab.c"}, "", false},
		{"non-base64url in chunk", []string{name + "=2~abc; " + name + ".1=d+f"}, "", false},
		{"mark inside", []string{name + "=ab~c"}, "", false},
		{"prefix-named cookie is not a chunk", []string{name + "x=abc"}, "", false},
		{"chunk 01 is not chunk 1", []string{name + "=2~abc; " + name + ".01=def"}, "", false},
		{"oversized chunk", []string{name + "=2~abc; " + name + ".1=" + strings.Repeat("A", 8*4000)}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.headers {
				r.Header.Add("Cookie", h)
			}
			got, ok := session.ReadCookies(r, name)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("ReadCookies = %q, %v; want %q, %v", got[:min(len(got), 40)], ok, tc.want, tc.ok)
			}
		})
	}
}

// A client sending a thousand chunk cookies gets no more work and no
// more Set-Cookie headers than one sending MaxChunks.
func TestCookieHostileChunkCount(t *testing.T) {
	opts := session.DefaultCookieOptions()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	var b strings.Builder
	b.WriteString(opts.Name + "=8~abc")
	for i := 1; i <= 1000; i++ {
		b.WriteString("; " + opts.Name + "." + strconv.Itoa(i) + "=abc")
	}
	r.Header.Set("Cookie", b.String())
	got, ok := session.ReadCookies(r, opts.Name)
	if !ok || len(got) != 3*session.MaxChunks {
		t.Fatalf("ReadCookies = %d bytes, %v; want the 8 declared chunks only", len(got), ok)
	}
	if cs := session.ClearCookies(r, opts); len(cs) != session.MaxChunks {
		t.Fatalf("ClearCookies returned %d cookies, want %d", len(cs), session.MaxChunks)
	}
	if cs := session.WriteCookies(r, opts, "abc"); len(cs) != session.MaxChunks {
		t.Fatalf("WriteCookies returned %d cookies, want 1 set + %d expired", len(cs), session.MaxChunks-1)
	}
	allocs := testing.AllocsPerRun(20, func() { session.ReadCookies(r, opts.Name) })
	if allocs > 2 {
		t.Fatalf("ReadCookies on a hostile header allocates %.0f times", allocs)
	}
}

func TestCookieOptionsValidate(t *testing.T) {
	def := session.DefaultCookieOptions()
	with := func(f func(*session.CookieOptions)) session.CookieOptions {
		o := def
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		o    session.CookieOptions
		want string // "" for valid
	}{
		{"defaults", def, ""},
		{"zero but secure", session.CookieOptions{Secure: true}, ""},
		{"dev cookie over http", with(func(o *session.CookieOptions) { o.Name = "gatehouse"; o.Secure = false }), ""},
		{"strict", with(func(o *session.CookieOptions) { o.SameSite = http.SameSiteStrictMode }), ""},
		{"none and secure", with(func(o *session.CookieOptions) { o.SameSite = http.SameSiteNoneMode }), ""},
		{"secure prefix with sub path", with(func(o *session.CookieOptions) { o.Name = "__Secure-gh"; o.Path = "/app" }), ""},
		{"zero value", session.CookieOptions{}, "requires secure"},
		{"host prefix without secure", with(func(o *session.CookieOptions) { o.Secure = false }), "requires secure"},
		{"secure prefix without secure", with(func(o *session.CookieOptions) { o.Name = "__Secure-gh"; o.Secure = false }), "requires secure"},
		{"host prefix any case", with(func(o *session.CookieOptions) { o.Name = "__HOST-gh"; o.Secure = false }), "requires secure"},
		{"host prefix with sub path", with(func(o *session.CookieOptions) { o.Path = "/app" }), "requires path"},
		{"bad name", with(func(o *session.CookieOptions) { o.Name = "a b" }), "not a valid cookie name"},
		{"name with =", with(func(o *session.CookieOptions) { o.Name = "a=b" }), "not a valid cookie name"},
		{"long name", with(func(o *session.CookieOptions) { o.Name = strings.Repeat("a", 65) }), "longer than 64"},
		{"relative path", with(func(o *session.CookieOptions) { o.Name = "gh"; o.Path = "app" }), "must start with /"},
		{"path with ;", with(func(o *session.CookieOptions) { o.Name = "gh"; o.Path = "/a;b" }), "must start with /"},
		{"none without secure", with(func(o *session.CookieOptions) { o.Name = "gh"; o.Secure = false; o.SameSite = http.SameSiteNoneMode }), "SameSite=None requires secure"},
		{"default samesite mode", with(func(o *session.CookieOptions) { o.SameSite = http.SameSiteDefaultMode }), "must be Lax"},
		{"negative max age", with(func(o *session.CookieOptions) { o.MaxAge = -time.Second }), "negative"},
		{"sub-second max age", with(func(o *session.CookieOptions) { o.MaxAge = time.Millisecond }), "below one second"},
		{"tiny chunk", with(func(o *session.CookieOptions) { o.MaxChunk = 100 }), "chunk size"},
		{"huge chunk", with(func(o *session.CookieOptions) { o.MaxChunk = 5000 }), "chunk size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// The cookie path end to end: seal, write, read back through a real
// request, open, unmarshal.
func TestCookieSealedSessionRoundTrip(t *testing.T) {
	c := newCodec(t, newKey(t))
	s := typicalSession(t)
	opts := session.DefaultCookieOptions()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Seal(opts.Name, b)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	for _, ck := range session.WriteCookies(httptest.NewRequest(http.MethodGet, "/", nil), opts, v) {
		http.SetCookie(rec, ck)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range rec.Result().Cookies() {
		r.AddCookie(ck)
	}
	got, ok := session.ReadCookies(r, opts.Name)
	if !ok {
		t.Fatal("ReadCookies found nothing")
	}
	pt, err := c.Open(opts.Name, got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := session.Unmarshal(pt)
	if err != nil {
		t.Fatal(err)
	}
	if back.Subject != s.Subject || back.AccessToken != s.AccessToken {
		t.Fatal("session changed on the way")
	}
	// Sealed for this cookie, it does not open as another cookie's value.
	if _, err := c.Open("__Host-other", got); err == nil {
		t.Fatal("value opened under another cookie name")
	}
}
