package config

import (
	"strings"
	"testing"
)

func TestDecisionAPISettings(t *testing.T) {
	const route = "routes:\n  - name: r\n    public: true\n    match: {path_prefix: /}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n"
	const only = "  - name: only\n    public: true\n    match: {path_prefix: /only}\n    decision_only: true\n"
	const two = "listeners:\n  - {name: main, address: \"127.0.0.1:0\"}\n  - {name: decide, address: \"127.0.0.1:0\"}\n"
	for _, tc := range []struct {
		name, src, wantErr string
	}{
		{"minimal", "decision_api: {trusted_callers: [10.0.0.5, 10.1.0.0/16]}\n" + route, ""},
		{"decision-only route", "decision_api: {trusted_callers: [10.0.0.5]}\n" + route + only, ""},
		{"own listener", two + "decision_api: {trusted_callers: [10.0.0.5], listener: decide}\n" + route, ""},
		{"callers required", "decision_api: {path: /decide}\n" + route, "decision_api.trusted_callers"},
		{"bad caller", "decision_api: {trusted_callers: [nginx.internal]}\n" + route, "decision_api.trusted_callers[0]"},
		{"relative path", "decision_api: {path: decide, trusted_callers: [10.0.0.5]}\n" + route, "decision_api.path"},
		{"trailing slash", "decision_api: {path: /decide/, trusted_callers: [10.0.0.5]}\n" + route, "decision_api.path"},
		{"dot segment", "decision_api: {path: /a/../decide, trusted_callers: [10.0.0.5]}\n" + route, "decision_api.path"},
		{"encoded path", "decision_api: {path: /a%2Fb, trusted_callers: [10.0.0.5]}\n" + route, "decision_api.path"},
		{"unknown listener", "decision_api: {trusted_callers: [10.0.0.5], listener: nope}\n" + route, "no listener is named"},
		{"only listener", "listeners:\n  - {name: main, address: \"127.0.0.1:0\"}\ndecision_api: {trusted_callers: [10.0.0.5], listener: main}\n" + route, "leave no listener"},
		{"route at the path", "decision_api: {trusted_callers: [10.0.0.5]}\n" + route +
			"  - name: shadowed\n    public: true\n    match: {path: /.gatehouse/decide}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n", "could never be reached"},
		{"route below the path", "decision_api: {trusted_callers: [10.0.0.5]}\n" + route +
			"  - name: shadowed\n    public: true\n    match: {path_prefix: /.gatehouse/decide/x}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n", "routes[1].match.path_prefix"},
		{"route at the path, on another listener", two + "decision_api: {trusted_callers: [10.0.0.5], listener: decide}\n" + route +
			"  - name: fine\n    public: true\n    match: {path: /.gatehouse/decide}\n    upstream: {targets: [\"http://127.0.0.1:1\"]}\n", ""},
		{"decision-only without the API", route + only, "there is no decision_api"},
		{"decision-only with an upstream", "decision_api: {trusted_callers: [10.0.0.5]}\n" + route + only + "    upstream: {targets: [\"http://127.0.0.1:1\"]}\n", "routes[1].decision_only"},
		{"decision-only with max_in_flight", "decision_api: {trusted_callers: [10.0.0.5]}\n" + route + only + "    max_in_flight: 3\n", "routes[1].decision_only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("c.yaml", []byte(tc.src), env(nil))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.DecisionAPI.Path != DefaultDecisionPath && !strings.Contains(tc.src, "path:") {
					t.Errorf("path %q, want the default", cfg.DecisionAPI.Path)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
