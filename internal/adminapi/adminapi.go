// Package adminapi is Gatehouse's JSON REST admin API: consumers and the
// API-key lifecycle (package keymgmt) over HTTP, for operators and the
// CLI. Mount it on the admin listener (loopback by default), never on the
// public one.
//
// Every /v1 request must carry "Authorization: Bearer <admin token>".
// Errors are RFC 9457 problem+json with stable type URNs. The OpenAPI 3.1
// description is served without a token at GET /openapi.json; it is
// generated from nothing, but a test holds it equal to the route table.
package adminapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"github.com/gatehouse/gatehouse/internal/apikey"
	"github.com/gatehouse/gatehouse/internal/quota"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/keymgmt"
	"github.com/gatehouse/gatehouse/internal/problem"
	"github.com/gatehouse/gatehouse/internal/revocation"
)

// Config configures New.
type Config struct {
	// Service runs the key lifecycle. nil: the key and consumer
	// operations answer 503 (no route accepts api_key, so no key store is
	// open).
	Service *keymgmt.Service
	// Revocations manages the revocation list. nil: the /v1/revocations
	// operations answer 503 (revocation.enabled is false).
	Revocations *revocation.Service
	// TokenHash is the SHA-256 of the admin token (32 bytes). Requests
	// must send "Authorization: Bearer <token>"; the token's hash is
	// compared in constant time, and the token itself is never kept. nil
	// or empty (or not 32 bytes) disables the API: every /v1 request gets
	// 503 "admin-disabled". The admin token grants full control over
	// every consumer and key: keep the listener on loopback.
	TokenHash []byte
	// Usage reports a consumer's quota use (GET
	// /v1/consumers/{consumer}/usage); nil: an empty list.
	Usage func(ctx context.Context, c *apikey.Consumer) ([]quota.Usage, error)
	// Log receives request failures (never tokens or keys). Default
	// slog.Default().
	Log *slog.Logger
}

// route is one admin API operation. The table below is the single source
// for the mux and for the test that checks the OpenAPI document.
type route struct {
	method  string
	path    string // ServeMux pattern path, also the OpenAPI path
	handler func(a *api, w http.ResponseWriter, r *http.Request)
	// revocations marks the revocation-list operations (Config.Revocations);
	// the others need Config.Service.
	revocations bool
}

// routes is every /v1 operation.
var routes = []route{
	{http.MethodPost, "/v1/consumers", (*api).createConsumer, false},
	{http.MethodGet, "/v1/consumers", (*api).listConsumers, false},
	{http.MethodGet, "/v1/consumers/{consumer}", (*api).getConsumer, false},
	{http.MethodDelete, "/v1/consumers/{consumer}", (*api).deleteConsumer, false},
	{http.MethodGet, "/v1/consumers/{consumer}/usage", (*api).consumerUsage, false},
	{http.MethodPost, "/v1/consumers/{consumer}/keys", (*api).createKey, false},
	{http.MethodGet, "/v1/keys", (*api).listKeys, false},
	{http.MethodGet, "/v1/keys/{key}", (*api).getKey, false},
	{http.MethodPost, "/v1/keys/{key}/rotate", (*api).rotateKey, false},
	{http.MethodPost, "/v1/keys/{key}/revoke", (*api).revokeKey, false},
	{http.MethodPost, "/v1/key-lookup", (*api).lookupKey, false},
	{http.MethodPost, "/v1/revocations", (*api).createRevocations, true},
	{http.MethodGet, "/v1/revocations", (*api).listRevocations, true},
	{http.MethodDelete, "/v1/revocations/{revocation}", (*api).deleteRevocation, true},
}

// openAPIPath serves the OpenAPI document, without authentication.
const openAPIPath = "/openapi.json"

//go:embed openapi.json
var openAPIDoc []byte

type api struct {
	svc       *keymgmt.Service
	rev       *revocation.Service
	usage     func(ctx context.Context, c *apikey.Consumer) ([]quota.Usage, error)
	tokenHash []byte // nil: disabled
	log       *slog.Logger
	mux       *http.ServeMux
}

// New returns the admin API handler: /v1/... (token required) and
// GET /openapi.json.
func New(cfg Config) http.Handler {
	a := &api{svc: cfg.Service, rev: cfg.Revocations, usage: cfg.Usage, log: cfg.Log, mux: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.Default()
	}
	switch len(cfg.TokenHash) {
	case sha256.Size:
		a.tokenHash = append([]byte(nil), cfg.TokenHash...)
	case 0:
	default:
		a.log.Warn("adminapi: token hash is not 32 bytes (SHA-256); admin API disabled", "len", len(cfg.TokenHash))
	}

	allowed := map[string][]string{}
	for _, rt := range routes {
		h := rt.handler
		switch {
		case rt.revocations && a.rev == nil:
			h = func(_ *api, w http.ResponseWriter, _ *http.Request) {
				problem.Write(w, problem.Unavailable, "The revocation list is off (revocation.enabled).", "")
			}
		case !rt.revocations && a.svc == nil:
			h = func(_ *api, w http.ResponseWriter, _ *http.Request) {
				problem.Write(w, problem.Unavailable, "No route accepts api_key, so no key store is open.", "")
			}
		}
		a.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) { h(a, w, r) })
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	// Known paths with another method: 405 as problem+json, not the
	// mux's plain text.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeProblem(w, probMethod, "", nil)
		})
	}
	a.mux.HandleFunc("GET "+openAPIPath, serveOpenAPI)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, probNotFound, "", nil)
	})
	return a
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDoc)
}

// ServeHTTP authenticates everything except the OpenAPI document (even
// unknown paths, so that the route structure is not revealed to callers
// without the token), then dispatches.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != openAPIPath && !a.authorize(w, r) {
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authorize checks the bearer token and answers the request if it fails.
func (a *api) authorize(w http.ResponseWriter, r *http.Request) bool {
	return authorizeToken(w, r, a.tokenHash, a.log)
}

// RequireToken serves h only to requests that carry the admin token, with
// the same check, answers and log lines as the admin API: 401
// admin-unauthorized without it, 503 admin-disabled when tokenHash is not
// a SHA-256 (no token configured). For other admin endpoints that need
// it (pprof, optionally /metrics).
func RequireToken(tokenHash []byte, log *slog.Logger, h http.Handler) http.Handler {
	if len(tokenHash) != sha256.Size {
		tokenHash = nil
	} else {
		tokenHash = append([]byte(nil), tokenHash...)
	}
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authorizeToken(w, r, tokenHash, log) {
			h.ServeHTTP(w, r)
		}
	})
}

// authorizeToken checks r's bearer token against tokenHash (nil: no token
// configured) and answers the request if it fails.
func authorizeToken(w http.ResponseWriter, r *http.Request, tokenHash []byte, log *slog.Logger) bool {
	if tokenHash == nil {
		writeProblem(w, probDisabled, "no admin token is configured", nil)
		return false
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	// Hash first, so the comparison is over fixed-length values and runs
	// in constant time whatever the token's length.
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], tokenHash) != 1 || !ok {
		log.Warn("adminapi: unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "token_present", ok)
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
		writeProblem(w, probUnauthorized, "send the admin token as Authorization: Bearer <token>", nil)
		return false
	}
	return true
}

// bearerToken extracts the token of an "Authorization: Bearer" header
// (scheme case-insensitive, RFC 9110 section 11.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
