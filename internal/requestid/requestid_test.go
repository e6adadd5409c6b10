package requestid

import (
	"strings"
	"testing"
)

func TestFromIncoming(t *testing.T) {
	for _, tc := range []struct {
		name     string
		incoming string
		kept     bool
	}{
		{"uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", true},
		{"dotted and colon", "svc.a:123_x", true},
		{"max length", strings.Repeat("a", MaxLen), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxLen+1), false},
		{"space", "abc def", false},
		{"newline injection", "abc\nlevel=error", false},
		{"quote", `abc"`, false},
		{"unicode", "abcé", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromIncoming(tc.incoming)
			if tc.kept && got != tc.incoming {
				t.Fatalf("FromIncoming(%q) = %q, want it kept", tc.incoming, got)
			}
			if !tc.kept && (got == tc.incoming || !Valid(got) || len(got) != 32) {
				t.Fatalf("FromIncoming(%q) = %q, want a new 32-char id", tc.incoming, got)
			}
		})
	}
}

func TestNewIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func FuzzValid(f *testing.F) {
	f.Add("abc")
	f.Add("a\r\nb")
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) && strings.ContainsAny(s, " \r\n\t\"'\\") {
			t.Fatalf("Valid accepted %q", s)
		}
	})
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = New()
	}
}
