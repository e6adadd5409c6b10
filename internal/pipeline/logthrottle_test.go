package pipeline

import (
	"testing"
	"time"
)

func TestLogThrottle(t *testing.T) {
	var lt logThrottle
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		reason     string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"first line passes", "store_unavailable", 0, true, 0},
		{"then held back", "store_unavailable", time.Second, false, 0},
		{"still held back", "store_unavailable", 9 * time.Second, false, 0},
		{"another reason is not", "keys_unavailable", 9 * time.Second, true, 0},
		{"after the interval, with the count", "store_unavailable", 10 * time.Second, true, 2},
		{"held back again", "store_unavailable", 11 * time.Second, false, 0},
		{"count starts over", "store_unavailable", 25 * time.Second, true, 1},
	} {
		ok, n := lt.allow(tc.reason, t0.Add(tc.at))
		if ok != tc.ok || n != tc.suppressed {
			t.Fatalf("%s: allow = %t, %d; want %t, %d", tc.name, ok, n, tc.ok, tc.suppressed)
		}
	}
}
