package session

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultCookieName is the session cookie's default name. The
	// __Host- prefix makes the browser refuse it unless it is Secure,
	// has Path=/ and no Domain: a sibling subdomain cannot set or
	// shadow it.
	DefaultCookieName = "__Host-gatehouse"

	// DefaultMaxChunk is the default number of value bytes per cookie:
	// browsers keep about 4096 bytes of name, value and attributes.
	DefaultMaxChunk = 3800

	// MaxChunks bounds the cookies one value is split into (name,
	// name.1 ... name.7). Reading never looks past it, so a client
	// sending a thousand chunk cookies costs no more than one sending
	// eight.
	MaxChunks = 8

	minChunk = 256
	maxChunk = 4000

	// chunkMark separates the chunk count from the first chunk's value
	// when a value is split: "3~AAAA…". It is not in the base64url
	// alphabet, so an unsplit value never holds it.
	chunkMark = '~'
)

// CookieOptions says how the session cookie is written. Start from
// DefaultCookieOptions; zero fields (but Secure) take the defaults.
type CookieOptions struct {
	// Name is the cookie name (default "__Host-gatehouse"); chunks are
	// Name.1, Name.2 ... A name with the __Host- prefix requires
	// Secure and Path "/"; one with __Secure- requires Secure.
	Name string
	// Path is the cookie path (default "/").
	Path string
	// Secure marks the cookie HTTPS-only (default true in
	// DefaultCookieOptions). false is allowed only for a name without
	// the __Host-/__Secure- prefix: plain-http development on localhost.
	Secure bool
	// SameSite is the cookie's SameSite attribute (default Lax, which
	// keeps the cookie off cross-site POSTs but lets a top-level
	// navigation from the IdP back to the callback carry it). None
	// requires Secure.
	SameSite http.SameSite
	// MaxAge is the cookie lifetime (0, the default: a browser-session
	// cookie, gone when the browser closes). Whole seconds.
	MaxAge time.Duration
	// MaxChunk is the number of value bytes per cookie (default 3800,
	// between 256 and 4000).
	MaxChunk int
}

// DefaultCookieOptions returns the defaults: "__Host-gatehouse", Path
// "/", Secure, SameSite=Lax, a browser-session cookie, 3800-byte chunks.
func DefaultCookieOptions() CookieOptions {
	return CookieOptions{Name: DefaultCookieName, Path: "/", Secure: true, SameSite: http.SameSiteLaxMode, MaxChunk: DefaultMaxChunk}
}

func (o CookieOptions) withDefaults() CookieOptions {
	if o.Name == "" {
		o.Name = DefaultCookieName
	}
	if o.Path == "" {
		o.Path = "/"
	}
	if o.SameSite == 0 {
		o.SameSite = http.SameSiteLaxMode
	}
	if o.MaxChunk == 0 {
		o.MaxChunk = DefaultMaxChunk
	}
	return o
}

// Validate reports options a browser would refuse or that weaken the
// cookie: call it once at config load.
func (o CookieOptions) Validate() error {
	o = o.withDefaults()
	if !validCookieName(o.Name) {
		return fmt.Errorf("session: cookie name %q is not a valid cookie name (letters, digits and !#$%%&'*+-.^_`|~)", o.Name)
	}
	if len(o.Name) > 64 {
		return fmt.Errorf("session: cookie name %q is longer than 64 bytes", o.Name)
	}
	hostPrefix := strings.HasPrefix(strings.ToLower(o.Name), "__host-")
	securePrefix := strings.HasPrefix(strings.ToLower(o.Name), "__secure-")
	if (hostPrefix || securePrefix) && !o.Secure {
		return fmt.Errorf("session: cookie %q: the __Host-/__Secure- prefix requires secure: true (use a name without the prefix for plain-http development)", o.Name)
	}
	if !strings.HasPrefix(o.Path, "/") || strings.ContainsAny(o.Path, ";,\\\"") || hasCtl(o.Path) {
		return fmt.Errorf("session: cookie path %q must start with / and hold no ; , \\ \" or control characters", o.Path)
	}
	if hostPrefix && o.Path != "/" {
		return fmt.Errorf("session: cookie %q: the __Host- prefix requires path \"/\"", o.Name)
	}
	switch o.SameSite {
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	case http.SameSiteNoneMode:
		if !o.Secure {
			return errors.New("session: SameSite=None requires secure: true")
		}
	default:
		return errors.New("session: cookie SameSite must be Lax, Strict or None")
	}
	if o.MaxAge < 0 {
		return errors.New("session: cookie max age must not be negative")
	}
	if o.MaxAge > 0 && o.MaxAge < time.Second {
		return errors.New("session: cookie max age below one second")
	}
	if o.MaxChunk < minChunk || o.MaxChunk > maxChunk {
		return fmt.Errorf("session: cookie chunk size %d, want %d to %d", o.MaxChunk, minChunk, maxChunk)
	}
	return nil
}

// MaxValueLen is the longest value WriteCookies can store with these
// options (MaxChunks cookies, the chunk count included). A longer value
// needs the server-side store.
func (o CookieOptions) MaxValueLen() int {
	o = o.withDefaults()
	return MaxChunks*o.MaxChunk - 2 // "8~" in the first chunk
}

func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// chunkName returns the name of chunk i (0: the name itself).
func chunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// WriteCookies returns the cookies to set for value (a Codec-sealed
// string): one cookie when it fits in MaxChunk bytes, else up to
// MaxChunks cookies Name, Name.1 ... whose first value starts with the
// chunk count. Every cookie is HttpOnly. Chunk cookies r carried that
// the new value does not use are expired, so no stale chunk outlives a
// shrinking session. A value longer than MaxValueLen (check first) or
// not base64url is not written: the result then clears the cookie.
// opts must have passed Validate.
func WriteCookies(r *http.Request, opts CookieOptions, value string) []*http.Cookie {
	opts = opts.withDefaults()
	if value == "" || len(value) > opts.MaxValueLen() || !isB64URL(value) {
		return ClearCookies(r, opts)
	}
	var parts []string
	if len(value) <= opts.MaxChunk {
		parts = []string{value}
	} else {
		first := opts.MaxChunk - 2
		n := 1 + (len(value)-first+opts.MaxChunk-1)/opts.MaxChunk
		parts = make([]string, 0, n)
		parts = append(parts, strconv.Itoa(n)+string(chunkMark)+value[:first])
		for rest := value[first:]; rest != ""; {
			k := min(len(rest), opts.MaxChunk)
			parts = append(parts, rest[:k])
			rest = rest[k:]
		}
	}
	out := make([]*http.Cookie, 0, MaxChunks)
	for i, p := range parts {
		out = append(out, opts.cookie(chunkName(opts.Name, i), p))
	}
	carried := carriedChunks(r, opts.Name)
	for i := len(parts); i < MaxChunks; i++ {
		if carried&(1<<i) != 0 {
			out = append(out, opts.expired(chunkName(opts.Name, i)))
		}
	}
	return out
}

// ClearCookies returns cookies that expire the session cookie and every
// chunk of it r carried (the attributes match, or a browser would keep
// a __Host- cookie).
func ClearCookies(r *http.Request, opts CookieOptions) []*http.Cookie {
	opts = opts.withDefaults()
	out := []*http.Cookie{opts.expired(opts.Name)}
	carried := carriedChunks(r, opts.Name)
	for i := 1; i < MaxChunks; i++ {
		if carried&(1<<i) != 0 {
			out = append(out, opts.expired(chunkName(opts.Name, i)))
		}
	}
	return out
}

func (o CookieOptions) cookie(name, value string) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: o.Path, Secure: o.Secure, HttpOnly: true,
		SameSite: o.SameSite, MaxAge: int(o.MaxAge / time.Second),
	}
}

func (o CookieOptions) expired(name string) *http.Cookie {
	return &http.Cookie{Name: name, Path: o.Path, Secure: o.Secure, HttpOnly: true, SameSite: o.SameSite, MaxAge: -1}
}

// carriedChunks returns a bit set of the chunk indexes (0 to
// MaxChunks-1) r carries cookies for.
func carriedChunks(r *http.Request, name string) uint32 {
	var set uint32
	if r == nil {
		return 0
	}
	eachCookie(r, func(n, _ string) bool {
		if i := chunkIndex(n, name); i >= 0 {
			set |= 1 << i
		}
		return true
	})
	return set
}

// chunkIndex returns i when n is chunkName(name, i) for i below
// MaxChunks, else -1.
func chunkIndex(n, name string) int {
	if n == name {
		return 0
	}
	if len(n) != len(name)+2 || n[:len(name)] != name || n[len(name)] != '.' {
		return -1
	}
	d := n[len(name)+1]
	if d < '1' || d >= '0'+MaxChunks {
		return -1
	}
	return int(d - '0')
}

// eachCookie calls fn for every name=value pair in r's Cookie headers,
// without allocating, until fn returns false.
func eachCookie(r *http.Request, fn func(name, value string) bool) {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			name, val, ok := strings.Cut(part, "=")
			if !ok {
				continue
			}
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if !fn(name, val) {
				return
			}
		}
	}
}

// ReadCookies returns the value WriteCookies stored under name, chunks
// joined. It returns false when the cookie is absent or inconsistent: a
// chunk named twice, a declared chunk missing, a count out of bounds,
// or a character outside base64url. Cookies past the declared count are
// ignored; nothing past MaxChunks is looked at.
func ReadCookies(r *http.Request, name string) (string, bool) {
	if r == nil || name == "" {
		return "", false
	}
	var parts [MaxChunks]string
	var seen uint32
	bad := false
	eachCookie(r, func(n, v string) bool {
		i := chunkIndex(n, name)
		if i < 0 {
			return true
		}
		if seen&(1<<i) != 0 {
			bad = true // shadowed or duplicated: refuse rather than guess
			return false
		}
		seen |= 1 << i
		parts[i] = v
		return true
	})
	if bad || seen&1 == 0 {
		return "", false
	}
	first := parts[0]
	mark := strings.IndexByte(first, chunkMark)
	if mark < 0 {
		if !isB64URL(first) || first == "" {
			return "", false
		}
		return first, true
	}
	if mark != 1 || first[0] < '2' || first[0] > '0'+MaxChunks {
		return "", false
	}
	n := int(first[0] - '0')
	size := len(first) - 2
	for i := 1; i < n; i++ {
		if seen&(1<<i) == 0 || parts[i] == "" {
			return "", false
		}
		size += len(parts[i])
	}
	if size > MaxChunks*maxChunk {
		return "", false
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(first[2:])
	for i := 1; i < n; i++ {
		b.WriteString(parts[i])
	}
	v := b.String()
	if !isB64URL(v) || v == "" {
		return "", false
	}
	return v, true
}

func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
