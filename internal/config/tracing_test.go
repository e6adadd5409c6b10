package config

import (
	"strings"
	"testing"
)

// TestTracingConfig: the tracing block's defaults, what validation
// refuses (and that it never echoes a collector header's value), and the
// export URL.
func TestTracingConfig(t *testing.T) {
	cfg, _, err := Parse("c.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tr := cfg.Tracing; tr.Enabled || tr.SamplingRatio != 1 || tr.ServiceName != "gatehouse" || tr.Timeout.String() != "10s" {
		t.Errorf("defaults: %+v", tr)
	}

	for _, tc := range []struct {
		name, block string
		want        string // "" = valid
		url         string // the export URL, when valid
	}{
		{"disabled needs nothing", "{enabled: false}", "", ""},
		{"https", `{enabled: true, endpoint: "https://collector:4318"}`, "", "https://collector:4318/v1/traces"},
		{"explicit path kept", `{enabled: true, endpoint: "https://collector/otlp/v1/traces"}`, "", "https://collector/otlp/v1/traces"},
		{"http with insecure", `{enabled: true, endpoint: "http://127.0.0.1:4318", insecure: true}`, "", "http://127.0.0.1:4318/v1/traces"},
		{"ratio from env", `{enabled: true, endpoint: "https://c", sampling_ratio: "${RATIO}"}`, "", "https://c/v1/traces"},
		{"endpoint required", "{enabled: true}", "tracing.endpoint: is required", ""},
		{"plain http refused", `{enabled: true, endpoint: "http://collector:4318"}`, "tracing.endpoint: is plain http", ""},
		{"credentials in URL", `{enabled: true, endpoint: "https://u:p@collector"}`, "must not carry credentials", ""},
		{"query", `{enabled: true, endpoint: "https://collector/?k=v"}`, "must not have a query", ""},
		{"relative", `{enabled: true, endpoint: "collector:4318"}`, "tracing.endpoint", ""},
		{"other scheme", `{enabled: true, endpoint: "grpc://collector:4317"}`, "scheme must be http or https", ""},
		{"ratio above 1", `{sampling_ratio: 1.5}`, "tracing.sampling_ratio: must be between 0 and 1", ""},
		{"ratio negative", `{sampling_ratio: -0.1}`, "tracing.sampling_ratio", ""},
		{"ratio not a number", `{sampling_ratio: half}`, "expected a number", ""},
		{"ratio NaN", `{sampling_ratio: NaN}`, "expected a number", ""},
		{"empty service name", `{enabled: true, endpoint: "https://c", service_name: ""}`, "tracing.service_name", ""},
		{"bad header value, not echoed", `{headers: {Authorization: "Bearer s3cr3t\u0001"}}`, "tracing.headers.Authorization: the value is not a valid header value", ""},
		{"bad header name", `{headers: {"Bad Name": x}}`, "not a valid header name", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "tracing: " + tc.block + "\n" + minimal
			cfg, _, err := Parse("c.yaml", []byte(src), env(map[string]string{"RATIO": "0.25"}))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.url != "" && cfg.Tracing.TracesURL() != tc.url {
					t.Errorf("TracesURL = %q, want %q", cfg.Tracing.TracesURL(), tc.url)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error echoes a header value: %v", err)
			}
		})
	}
	if cfg, _, err := Parse("c.yaml", []byte("tracing: {sampling_ratio: \"${RATIO}\"}\n"+minimal), env(map[string]string{"RATIO": "0.25"})); err != nil || cfg.Tracing.SamplingRatio != 0.25 {
		t.Errorf("sampling_ratio from env: %v %v", cfg, err)
	}
}
