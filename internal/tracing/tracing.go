// Package tracing owns Gatehouse's OpenTelemetry tracer provider: a
// parent-based ratio sampler, a batching OTLP/HTTP exporter and the
// service resource. The gateway builds one Provider for its whole life
// (plans come and go across reloads; the provider and its export queue do
// not) and shuts it down with a bounded flush. What a request records is
// decided in internal/pipeline (trace.go).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Provider is the process's tracer provider.
type Provider struct {
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	timeout time.Duration
}

// New builds the provider of a validated, enabled tracing block. version is
// the service.version attribute ("" to leave it out). Nothing is sent until
// a span ends; an unreachable collector costs dropped spans, never a
// blocked request.
func New(cfg config.Tracing, version string, log *slog.Logger) (*Provider, error) {
	if !cfg.Enabled {
		return nil, errors.New("tracing: not enabled")
	}
	if log != nil {
		errorLog.Store(log)
		setHandler.Do(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(handleError)) })
	}
	timeout := cfg.Timeout.Std()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	opts := []otlptracehttp.Option{
		// WithEndpointURL takes http or https from the URL; validation has
		// refused http:// unless tracing.insecure is set.
		otlptracehttp.WithEndpointURL(cfg.TracesURL()),
		otlptracehttp.WithTimeout(timeout),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// New only builds the client: no connection is made here.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SamplingRatio))),
		sdktrace.WithBatcher(exp, sdktrace.WithExportTimeout(timeout)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &Provider{tp: tp, tracer: tp.Tracer("github.com/gatehouse/gatehouse"), timeout: timeout}, nil
}

// The OpenTelemetry SDK reports export failures (a collector down or
// refusing) to one process-wide handler; they go to the operational log of
// the gateway that built the latest Provider. The messages name the
// collector URL and status, never the configured headers.
var (
	errorLog   atomic.Pointer[slog.Logger]
	setHandler sync.Once
)

func handleError(err error) {
	if log := errorLog.Load(); log != nil {
		log.Warn("tracing: spans could not be exported", "err", err)
	}
}

// Tracer is the tracer the pipeline records requests with.
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// ForceFlush exports the spans ended so far, within ctx.
func (p *Provider) ForceFlush(ctx context.Context) error { return p.tp.ForceFlush(ctx) }

// Shutdown flushes what is pending and stops the exporter. The flush is
// bounded by the configured timeout even when ctx has no deadline, so a
// dead collector cannot hold the process at exit.
func (p *Provider) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
