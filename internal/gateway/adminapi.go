package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminapi"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keymgmt"
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
// too. Without an API-key store (no route uses api_key) the API answers 503.
func (g *Gateway) mountAdminAPI(mux *http.ServeMux, cfg *config.Config, auditLog audit.Logger) ([]byte, error) {
	hash, file, err := adminTokenHash(cfg.Admin)
	if err != nil {
		return nil, err
	}
	if file != "" {
		g.log.Info("gateway: admin API token written", "file", file)
	}
	if g.apiKeys == nil {
		unavailable := func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, problem.Unavailable, "No route accepts api_key, so no key store is open.", "")
		}
		mux.HandleFunc("/v1/", unavailable)
		return hash, nil
	}
	svc := &keymgmt.Service{
		Store:         g.apiKeys.Store,
		Format:        g.apiKeys.Format,
		Hasher:        g.apiKeys.Hasher,
		Audit:         auditLog,
		Invalidate:    g.apiKeys.Invalidate,
		RotationGrace: cfg.APIKeys.RotationGrace.Std(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stopExpiry = cancel
	go svc.WatchExpiry(ctx, time.Minute)
	h := adminapi.New(adminapi.Config{Service: svc, TokenHash: hash, Log: g.log})
	mux.Handle("/v1/", h)
	mux.Handle("GET /openapi.json", h)
	return hash, nil
}
