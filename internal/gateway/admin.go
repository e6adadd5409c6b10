package gateway

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/problem"
)

// adminHandler serves the operations endpoints:
//
//	/healthz  live: the process serves HTTP (200 while running, even draining)
//	/readyz   ready: a configuration is loaded, its identity sources are
//	          usable and the instance is not draining; 503 otherwise, so a
//	          load balancer stops sending traffic before shutdown.
func (g *Gateway) adminHandler(cfg *config.Config) (http.Handler, error) {
	mux := http.NewServeMux()
	if err := g.mountAdminAPI(mux, cfg, planAudit{g}); err != nil {
		return nil, err
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
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.RouteNotFound, "Unknown admin endpoint.", "")
	})
	return mux, nil
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
