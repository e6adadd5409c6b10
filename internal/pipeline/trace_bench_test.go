package pipeline_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// discardExporter drops every batch: the benchmark measures the pipeline's
// span work and the SDK's batching, not a collector.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkServeHTTPTraced is BenchmarkServeHTTP's public, api_key and
// jwt_warm routes with tracing off (no Tracer), on at 1 % sampling (the
// issue's target) and on at 100 %, with the gateway's sampler and batcher:
//
//	go test -run '^$' -bench ServeHTTPTraced -benchmem ./internal/pipeline
func BenchmarkServeHTTPTraced(b *testing.B) {
	for _, kind := range []string{"public", "api_key", "jwt_warm"} {
		b.Run(kind+"/tracing_off", func(b *testing.B) { pipeline.ServeBenchWith(b, kind, pipeline.Options{}) })
		for _, c := range []struct {
			name  string
			ratio float64
		}{{"sampled_1pct", 0.01}, {"sampled_all", 1}} {
			b.Run(kind+"/"+c.name, func(b *testing.B) {
				tp := sdktrace.NewTracerProvider(
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.ratio))),
					sdktrace.WithBatcher(discardExporter{}))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
				pipeline.ServeBenchWith(b, kind, pipeline.Options{Tracer: tp.Tracer("bench")})
			})
		}
	}
}
