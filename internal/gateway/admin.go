package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/gatehouse/gatehouse/internal/adminapi"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/problem"
)

// adminHandler serves the operations endpoints:
//
//	/healthz       live: the process serves HTTP (200 while running, even draining)
//	/readyz        ready: a configuration is loaded, its identity sources are
//	               usable and the instance is not draining; 503 otherwise, so a
//	               load balancer stops sending traffic before shutdown.
//	/metrics       Prometheus metrics (metrics.enabled; the admin token with
//	               metrics.require_token)
//	/debug/pprof/  Go runtime profiles, behind the admin token (admin.pprof)
//	/identity-assertion/jwks.json  the identity assertion's public keys
//	               (identity_assertion.jwks.admin; 404 otherwise)
func (g *Gateway) adminHandler(cfg *config.Config) (http.Handler, error) {
	mux := http.NewServeMux()
	tokenHash, err := g.mountAdminAPI(mux, cfg, planAudit{g})
	if err != nil {
		return nil, err
	}
	if g.metrics != nil {
		h := g.metrics.Handler()
		if cfg.Metrics.RequireToken {
			h = adminapi.RequireToken(tokenHash, g.log, h)
		}
		mux.Handle("GET /metrics", h)
	}
	if cfg.Admin.Pprof {
		mux.Handle("GET /debug/pprof/", adminapi.RequireToken(tokenHash, g.log, pprofHandler()))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{}
		if t := g.loadedAt.Load(); t != nil {
			body["config_loaded_at"] = t.UTC().Format(time.RFC3339)
		}
		if msg := g.lastError.Load(); msg != nil {
			// The file on disk is broken but the previous config serves;
			// still ready, and the operator sees why a reload did not apply.
			body["last_reload_error"] = *msg
		}
		plan := g.plan.Load()
		status := http.StatusOK
		switch {
		case g.draining.Load():
			status, body["status"] = http.StatusServiceUnavailable, "draining"
		case plan == nil:
			status, body["status"] = http.StatusServiceUnavailable, "no configuration"
		default:
			body["routes"] = plan.Routes()
			if err := plan.Ready(); err != nil {
				status, body["status"], body["reason"] = http.StatusServiceUnavailable, "not ready", err.Error()
			} else {
				body["status"] = "ready"
			}
		}
		writeJSON(w, status, body)
	})
	mux.HandleFunc("GET /identity-providers", func(w http.ResponseWriter, r *http.Request) {
		// Key set health per provider: key ids, last refresh, last error.
		// Key ids and URLs are not secret; keys themselves are not shown.
		writeJSON(w, http.StatusOK, map[string]any{"providers": g.plan.Load().ProviderHealth()})
	})
	mux.HandleFunc("GET /identity-assertion/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		// The identity assertion's public keys (identity_assertion.jwks.admin).
		if h := g.plan.Load().AssertionJWKS(); h != nil {
			_ = h.ServeEndpoint(w, r, nil)
			return
		}
		problem.Write(w, problem.RouteNotFound, "The identity assertion's JWK Set is not served on the admin listener (identity_assertion.jwks.admin).", "")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.RouteNotFound, "Unknown admin endpoint.", "")
	})
	return mux, nil
}

// pprofHandler serves net/http/pprof's endpoints on a mux of its own (the
// package also registers them on http.DefaultServeMux, which Gatehouse
// never serves). Profiles and traces are bounded by the admin listener's
// 10s write timeout: ask for seconds=5, not the default 30.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile: heap, goroutine, allocs, …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// planAudit sends lifecycle events to the current plan's audit sink, so
// they follow audit.output across reloads.
type planAudit struct{ g *Gateway }

func (a planAudit) Log(e *audit.Event) { a.g.plan.Load().Audit().Log(e) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
