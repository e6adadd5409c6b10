package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
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
	// Remove first so a file left with wider permissions is not reused.
	_ = os.Remove(c.TokenFile)
	if err := os.WriteFile(c.TokenFile, []byte(token+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("gateway: writing admin token file: %w", err)
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], c.TokenFile, nil
}

// mountAdminAPI adds the key-management API to the admin mux. Without an
// API-key store (no route uses api_key) the API answers 503.
func (g *Gateway) mountAdminAPI(mux *http.ServeMux, cfg *config.Config, auditLog audit.Logger) error {
	hash, file, err := adminTokenHash(cfg.Admin)
	if err != nil {
		return err
	}
	if file != "" {
		g.log.Info("gateway: admin API token written", "file", file)
	}
	if g.apiKeys == nil {
		unavailable := func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, problem.Unavailable, "No route accepts api_key, so no key store is open.", "")
		}
		mux.HandleFunc("/v1/", unavailable)
		return nil
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
	return nil
}
