package pipeline_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// BenchmarkServeHTTPObserved is BenchmarkServeHTTP's public, api_key and
// jwt_warm routes without an observer (metrics off) and with the
// Prometheus one (metrics on), side by side:
//
//	go test -run '^$' -bench ServeHTTPObserved -benchmem ./internal/pipeline
func BenchmarkServeHTTPObserved(b *testing.B) {
	for _, kind := range []string{"public", "api_key", "jwt_warm"} {
		b.Run(kind+"/metrics_off", func(b *testing.B) { pipeline.ServeBench(b, kind, nil) })
		b.Run(kind+"/metrics_on", func(b *testing.B) { pipeline.ServeBench(b, kind, metrics.New(metrics.Options{})) })
	}
}
