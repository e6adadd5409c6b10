package reply

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestValidLocation(t *testing.T) {
	for _, tc := range []struct {
		loc  string
		want bool
	}{
		{"/", true},
		{"/app?next=%2Fx#frag", true},
		{"https://app.example.com/cb", true},
		{"http://127.0.0.1:8080/", true},
		{"", false},
		{"app", false},             // relative: resolved against the request's path
		{"//evil.example/", false}, // scheme-relative: another host
		{"/\\evil.example", false}, // browsers read \ as /
		{"/a\r\nSet-Cookie: x", false},
		{"/a\nb", false},
		{"/a b", false},
		{"javascript:alert(1)", false},
		{"https:///nohost", false},
		{"https://user:pw@example.com/", false},
		{"ftp://example.com/", false},
		{"HTTPS://example.com/", false}, // one spelling only
		{"/" + strings.Repeat("a", 9000), false},
	} {
		if got := ValidLocation(tc.loc); got != tc.want {
			t.Errorf("ValidLocation(%q) = %v, want %v", tc.loc, got, tc.want)
		}
	}
}

func TestRedirectCheck(t *testing.T) {
	ok := &http.Cookie{Name: "s", Value: "v", Path: "/"}
	for _, tc := range []struct {
		name    string
		status  int
		loc     string
		cookies []*http.Cookie
		want    error
	}{
		{"302", http.StatusFound, "/x", []*http.Cookie{ok}, nil},
		{"303", http.StatusSeeOther, "https://a.example/x", nil, nil},
		{"301", http.StatusMovedPermanently, "/x", nil, ErrRedirectStatus},
		{"307", http.StatusTemporaryRedirect, "/x", nil, ErrRedirectStatus},
		{"bad location", http.StatusFound, "//x", nil, ErrRedirectLocation},
		{"nil cookie", http.StatusFound, "/x", []*http.Cookie{nil}, ErrCookie},
		{"bad cookie name", http.StatusFound, "/x", []*http.Cookie{{Name: "a b", Value: "v"}}, ErrCookie},
		{"cookie path with ;", http.StatusFound, "/x", []*http.Cookie{{Name: "a", Value: "v", Path: "/;Domain=evil"}}, ErrCookie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRedirect(tc.status, tc.loc, tc.cookies...)
			if tc.want == nil && err != nil || tc.want != nil && (err == nil || !strings.Contains(err.Error(), tc.want.Error())) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 0, -time.Second: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, time.Minute: 60} {
		if got := (&TooManyRequestsError{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfter %v: %d, want %d", d, got, want)
		}
	}
}

// FuzzValidLocation: whatever is accepted cannot split a header or name
// another host by a scheme-relative or backslash form.
func FuzzValidLocation(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "https://x.example/", "//x", "/\\x", "/a\r\n", "http://a@b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidLocation(s) {
			return
		}
		if strings.ContainsAny(s, "\r\n\x00\\ ") || strings.HasPrefix(s, "//") {
			t.Fatalf("accepted %q", s)
		}
		if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
			t.Fatalf("accepted %q, neither a path nor an http(s) URL", s)
		}
	})
}
