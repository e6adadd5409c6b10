package ratelimit_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

func TestHeaders(t *testing.T) {
	burst := ratelimit.Limit{Name: "burst", Rate: 20, Period: time.Second}
	daily := ratelimit.Limit{Name: "daily", Rate: 10000, Period: 24 * time.Hour}
	sub := ratelimit.Limit{Name: "sub-second", Rate: 5, Period: 100 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		limits     []ratelimit.Limit
		ds         []ratelimit.Decision
		policy, rl string
		retryAfter int64
	}{
		{"one limit", []ratelimit.Limit{burst},
			[]ratelimit.Decision{{Allowed: true, Remaining: 19, ResetAfter: 50 * time.Millisecond}},
			`"burst";q=20;w=1`, `"burst";r=19;t=1`, 1},
		{"two limits", []ratelimit.Limit{burst, daily},
			[]ratelimit.Decision{{Remaining: 0, RetryAfter: 1500 * time.Millisecond, ResetAfter: time.Second}, {Allowed: true, Remaining: 9876, ResetAfter: time.Hour}},
			`"burst";q=20;w=1, "daily";q=10000;w=86400`, `"burst";r=0;t=1, "daily";r=9876;t=3600`, 2},
		{"a window under a second is rounded up", []ratelimit.Limit{sub},
			[]ratelimit.Decision{{Allowed: true, Remaining: 4, ResetAfter: 0}},
			`"sub-second";q=5;w=1`, `"sub-second";r=4;t=0`, 1},
		{"negative remaining is never sent", []ratelimit.Limit{burst},
			[]ratelimit.Decision{{Remaining: -3, RetryAfter: 30 * time.Second, ResetAfter: 30 * time.Second}},
			`"burst";q=20;w=1`, `"burst";r=0;t=30`, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ratelimit.PolicyHeader(tc.limits); got != tc.policy {
				t.Errorf("RateLimit-Policy = %s, want %s", got, tc.policy)
			}
			if got := string(ratelimit.AppendRateLimit(nil, tc.limits, tc.ds)); got != tc.rl {
				t.Errorf("RateLimit = %s, want %s", got, tc.rl)
			}
			if got := ratelimit.RetryAfter(tc.ds); got != tc.retryAfter {
				t.Errorf("Retry-After = %d, want %d", got, tc.retryAfter)
			}
		})
	}
}

// sfList is the shape of a Structured Field list of strings with
// integer parameters (RFC 9651), as both fields are.
var sfList = regexp.MustCompile(`^("([\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"(;[a-z]+=[0-9]{1,15})*)(, "([\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"(;[a-z]+=[0-9]{1,15})*)*$`)

func FuzzAppendRateLimit(f *testing.F) {
	f.Add("burst", 20, int64(time.Second), 19, int64(time.Millisecond))
	f.Add("a\"b\\c\x00\xff", 1, int64(1), -5, int64(-1))
	f.Add("x", 1<<30, int64(1<<62), 1<<40, int64(1<<62))
	f.Fuzz(func(t *testing.T, name string, rate int, period int64, remaining int, reset int64) {
		if len(name) > 256 {
			return
		}
		limits := []ratelimit.Limit{{Name: name, Rate: rate, Period: time.Duration(period)}, {Name: "second", Rate: 1, Period: time.Second}}
		ds := []ratelimit.Decision{{Remaining: remaining, ResetAfter: time.Duration(reset), RetryAfter: time.Duration(reset)}, {}}
		for _, v := range []string{ratelimit.PolicyHeader(limits), string(ratelimit.AppendRateLimit(nil, limits, ds))} {
			if !sfList.MatchString(v) {
				t.Fatalf("not a structured field list: %q", v)
			}
			if len(v) > 2*len(name)+128 {
				t.Fatalf("value of %d bytes for a name of %d", len(v), len(name))
			}
		}
		if ra := ratelimit.RetryAfter(ds); ra < 1 {
			t.Fatalf("Retry-After %d", ra)
		}
	})
}
