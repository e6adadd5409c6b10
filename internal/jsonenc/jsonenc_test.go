package jsonenc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// marshalString is what encoding/json writes for s.
func marshalString(t testing.TB, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// slogString is what slog's JSONHandler writes for a string attribute.
func slogString(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, nil)
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(slog.String("k", s))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	const prefix = `{"level":"INFO","msg":"","k":`
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "}") {
		t.Fatalf("unexpected slog line %q", line)
	}
	return line[len(prefix) : len(line)-1]
}

var stringCases = []string{
	"", "plain", "/users/42?page=2", `quote " backslash \ slash /`,
	"control \x00\x01\x07\b\f\n\r\t\x1f\x7f", "html <script>&amp;</script>",
	"unicode é 日本 🎉", "line sep \u2028 para sep \u2029",
	"invalid \xff\xfe utf-8", "truncated \xe6\x97", "lone continuation \x80 byte",
	"surrogate \xed\xa0\x80", "overlong \xc0\xaf", "mixed \xe6\x97&x=\x01\u2029end",
	strings.Repeat("a", 300) + "\n",
}

func TestAppendStringMatchesEncoders(t *testing.T) {
	for _, s := range stringCases {
		if got, want := string(AppendString(nil, s, Marshal)), marshalString(t, s); got != want {
			t.Errorf("Marshal style %q:\n got %s\nwant %s", s, got, want)
		}
		if got, want := string(AppendString([]byte("x"), []byte(s), Marshal)), "x"+marshalString(t, s); got != want {
			t.Errorf("Marshal style []byte %q:\n got %s\nwant %s", s, got, want)
		}
		if got, want := string(AppendString(nil, s, Slog)), slogString(t, s); got != want {
			t.Errorf("Slog style %q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestAppendStringIsValidJSON(t *testing.T) {
	for _, s := range stringCases {
		for _, style := range []Style{Marshal, Slog} {
			var back string
			if err := json.Unmarshal(AppendString(nil, s, style), &back); err != nil {
				t.Fatalf("style %d, %q: %v", style, s, err)
			}
			if utf8.ValidString(s) && back != s {
				t.Errorf("style %d: round trip %q = %q", style, s, back)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendString(nil, s, Marshal)), marshalString(t, s); got != want {
			t.Fatalf("Marshal style %q:\n got %s\nwant %s", s, got, want)
		}
		if got, want := string(AppendString(nil, s, Slog)), slogString(t, s); got != want {
			t.Fatalf("Slog style %q:\n got %s\nwant %s", s, got, want)
		}
	})
}

func TestAppendFloatMatchesMarshal(t *testing.T) {
	for _, f := range []float64{
		0, math.Copysign(0, -1), 1, -1, 1.5, 0.001, 0.0005, 1e-6, 9.99e-7, 1e-7, 1.234e-9,
		123456.789, 1e20, 1e21, 1.5e21, 9.2e15, -3.25, math.MaxFloat64, math.SmallestNonzeroFloat64,
	} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	buf := make([]byte, 0, 256)
	s := "/api/users/42/orders?page=2&sort=created_at"
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendString(buf[:0], s, Slog)
	}
}
