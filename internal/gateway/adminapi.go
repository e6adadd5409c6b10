package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/apikey"
	authnapikey "github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/quota"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminapi"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/problem"
)

// adminTokenHash returns the SHA-256 of the admin API token: the configured
// hash, or that of a token generated now and written (mode 0600) to
// admin.token_file for the CLI on this machine. nil disables the admin API.
func adminTokenHash(c config.Admin) ([]byte, string, error) {
	if c.TokenHash != "" {
		h, err := config.ParseTokenHash(c.TokenHash)
		return h, "", err
	}
	if c.TokenFile == "" {
		return nil, "", nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	token := "gha_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := writeSecretFile(c.TokenFile, []byte(token+"\n")); err != nil {
		return nil, "", fmt.Errorf("gateway: writing admin token file: %w", err)
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], c.TokenFile, nil
}

// writeSecretFile replaces the file at name with data, readable by this
// user only (0600). It never writes through what is at name: a symbolic
// link planted there (pointing at a file the gateway's user may write) is
// replaced, not followed, and a file left with wider permissions is not
// reused. The data goes to a new file created exclusively (O_EXCL, mode
// 0600) in the same directory, which is then renamed over name: rename
// replaces the directory entry itself, atomically, so a reader sees the
// old token or the new one, never half of one.
func writeSecretFile(name string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp already uses 0600; say so in case a umask or a future
	// change of CreateTemp thinks otherwise.
	if err = f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// mountAdminAPI adds the key-management API to the admin mux and returns
// the admin token's hash (nil: none), which other admin endpoints check
// too. The API works on the API-key runtime of the plan serving now, so a
// reload that adds the first api_key route, or switches to another store,
// moves it along; while no route accepts api_key (no key store is open)
// it answers 503.
func (g *Gateway) mountAdminAPI(mux *http.ServeMux, cfg *config.Config, auditLog audit.Logger) ([]byte, error) {
	hash, file, err := adminTokenHash(cfg.Admin)
	if err != nil {
		return nil, err
	}
	if file != "" {
		g.log.Info("gateway: admin API token written", "file", file)
	}
	g.keyAdmin.mount(hash, auditLog)
	if p := g.plan.Load(); p != nil {
		g.keyAdmin.follow(p.APIKeys(), g.cfg.Load().APIKeys.RotationGrace.Std(), p.Revocations())
	}
	mux.Handle("/v1/", &g.keyAdmin)
	mux.Handle("GET /openapi.json", &g.keyAdmin)
	return hash, nil
}

// keyAdmin is the key-management API over the current plan's API-key
// runtime: one keymgmt.Service (and expiry watcher) per runtime, replaced
// when a reload brings another runtime or rotation grace.
type keyAdmin struct {
	g *Gateway

	mu        sync.Mutex
	mounted   bool
	tokenHash []byte
	audit     audit.Logger
	cur       atomic.Pointer[keyAdminState]
}

type keyAdminState struct {
	keys  *pipeline.APIKeys
	grace time.Duration
	rev   *pipeline.Revocations
	h     http.Handler // nil: no runtime
	stop  context.CancelFunc
}

func (a *keyAdmin) mount(tokenHash []byte, auditLog audit.Logger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mounted, a.tokenHash, a.audit = true, tokenHash, auditLog
}

// follow serves keys and the revocation list (nil: none) from now on.
// Nothing happens until the API is mounted (the admin listener may be
// disabled).
func (a *keyAdmin) follow(keys *pipeline.APIKeys, grace time.Duration, rev *pipeline.Revocations) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur.Load()
	if !a.mounted || (old != nil && old.keys == keys && old.grace == grace && old.rev == rev) {
		return
	}
	next := &keyAdminState{keys: keys, grace: grace, rev: rev}
	var svc *keymgmt.Service
	if keys != nil {
		svc = &keymgmt.Service{
			Store:         keys.Store,
			Format:        keys.Format,
			Hasher:        keys.Hasher,
			Audit:         a.audit,
			Invalidate:    keys.Invalidate,
			RotationGrace: grace,
		}
		ctx, cancel := context.WithCancel(context.Background())
		next.stop = cancel
		go svc.WatchExpiry(ctx, time.Minute)
	}
	if keys != nil || rev != nil {
		ac := adminapi.Config{Service: svc, TokenHash: a.tokenHash, Log: a.g.log, Usage: a.g.quotaUsage}
		if rev != nil {
			rs := *rev.Service // shared by plans; the audit sink is the admin API's
			rs.Audit = a.audit
			ac.Revocations = &rs
		}
		next.h = adminapi.New(ac)
	}
	a.cur.Store(next)
	if old != nil && old.stop != nil {
		old.stop()
	}
}

// stop ends the expiry watcher (shutdown).
func (a *keyAdmin) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st := a.cur.Load(); st != nil && st.stop != nil {
		st.stop()
		st.stop = nil
	}
}

func (a *keyAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := a.cur.Load()
	switch {
	case st != nil && st.h != nil:
		st.h.ServeHTTP(w, r)
	case r.URL.Path == "/openapi.json":
		// As without any key API: not an endpoint.
		problem.Write(w, problem.RouteNotFound, "Unknown admin endpoint.", "")
	default:
		problem.Write(w, problem.Unavailable, "No route accepts api_key, so no key store is open.", "")
	}
}

// quotaUsage reports a consumer's quota use under the plan serving now:
// the quotas that count by the consumer (its id, name or a claim an API
// key carries), not by address or route.
func (g *Gateway) quotaUsage(ctx context.Context, c *apikey.Consumer) ([]quota.Usage, error) {
	p := g.plan.Load()
	if p == nil {
		return nil, nil
	}
	id := &identity.Identity{
		Subject: c.ID, Issuer: authnapikey.Issuer, Provider: authnapikey.Provider, Method: identity.MethodAPIKey,
		ClientID: c.Name, Claims: map[string]any{"consumer_name": c.Name},
	}
	now := time.Now
	if g.opts.Pipeline.Now != nil {
		now = g.opts.Pipeline.Now
	}
	return p.QuotaUsage(ctx, id, now())
}
