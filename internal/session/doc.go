// Package session holds browser-login sessions: the session data, the
// sealing of cookie values, chunked cookies, and the Redis store for
// server-side sessions. The `session` credential method
// (internal/authn/session) builds on it; this package knows nothing of
// OIDC flows or HTTP handlers.
//
// # API
//
// Sealing (XChaCha20-Poly1305 from golang.org/x/crypto; keys[0] seals,
// every key opens, so keys rotate; the purpose is bound as additional
// data; output is base64url of version | key id | nonce | ciphertext):
//
//	var ErrInvalid   // any decode/auth failure; never tell a client why
//	var ErrNotFound  // RedisStore.Load: no such session
//	var ErrTooLarge  // Seal/Marshal: over MaxPlaintext
//	func NewCodec(keys [][]byte) (*Codec, error)          // 1..16 keys of 32 bytes
//	func ParseKeys(specs []string) ([][]byte, error)      // base64 std or url; errors never echo a key
//	func NewKey() (string, error)                         // a fresh key, as ParseKeys reads it
//	func (c *Codec) Seal(purpose string, plaintext []byte) (string, error)
//	func (c *Codec) Open(purpose, value string) ([]byte, error) // ErrInvalid
//
// Cookies (HttpOnly always; a value over MaxChunk bytes is split into
// Name, Name.1 ... up to MaxChunks cookies, the first prefixed "N~"):
//
//	type CookieOptions struct{ Name, Path string; Secure bool; SameSite http.SameSite; MaxAge time.Duration; MaxChunk int }
//	func DefaultCookieOptions() CookieOptions            // __Host-gatehouse, /, Secure, Lax, session cookie, 3800
//	func (o CookieOptions) Validate() error               // once, at config load
//	func (o CookieOptions) MaxValueLen() int              // longest value WriteCookies stores
//	func WriteCookies(r *http.Request, opts CookieOptions, value string) []*http.Cookie // expires leftover chunks r carried
//	func ReadCookies(r *http.Request, name string) (string, bool) // false: absent or inconsistent
//	func ClearCookies(r *http.Request, opts CookieOptions) []*http.Cookie
//
// The session:
//
//	type Session struct{ ID, Provider, Issuer, Subject, SID string; Claims map[string]any;
//	    AccessToken, RefreshToken, IDToken string; TokenExpiry, AuthTime, Created, LastSeen time.Time }
//	func NewID() (string, error)                          // 128 random bits, base64url (22 chars)
//	func ValidID(id string) bool
//	func (s *Session) Marshal() ([]byte, error)           // plaintext with tokens: seal it
//	func Unmarshal(b []byte) (*Session, error)            // strict, bounded; ErrInvalid
//
// Times are kept to the second; Claims numbers come back as float64.
//
// Server-side sessions (the cookie then carries only the sealed ID; the
// data in Redis is sealed too, so WithCodec is required):
//
//	func NewRedisStore(client redis.UniversalClient, prefix string, opts ...StoreOption) *RedisStore
//	func WithCodec(*Codec) StoreOption; WithClock(func() time.Time); WithTimeout(time.Duration)
//	func (s *RedisStore) Save(ctx, sess *Session, ttl time.Duration) error // indexes (issuer,sid), (issuer,subject)
//	func (s *RedisStore) Load(ctx, id string) (*Session, error)           // ErrNotFound, ErrInvalid, or a store error (fail closed)
//	func (s *RedisStore) Delete(ctx, id string) error
//	func (s *RedisStore) DeleteBySID(ctx, issuer, sid string) (int, error)
//	func (s *RedisStore) DeleteBySubject(ctx, issuer, subject string) (int, error)
//
// A typical cookie-only round trip:
//
//	b, _ := sess.Marshal()
//	v, _ := codec.Seal(opts.Name, b)              // purpose: the cookie name
//	if len(v) > opts.MaxValueLen() { /* use the RedisStore */ }
//	for _, c := range session.WriteCookies(r, opts, v) { http.SetCookie(w, c) }
//	...
//	v, ok := session.ReadCookies(r, opts.Name)
//	b, err := codec.Open(opts.Name, v)
//	sess, err := session.Unmarshal(b)
package session
