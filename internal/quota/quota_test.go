package quota

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		q          Quota
		now        string
		start, end string
	}{
		{"day UTC", Quota{Period: Day}, "2026-11-29T21:30:00Z", "2026-11-29T00:00:00Z", "2026-11-30T00:00:00Z"},
		{"month UTC", Quota{Period: Month}, "2026-02-14T10:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"month end of year", Quota{Period: Month}, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"day Berlin", Quota{Period: Day, Location: berlin}, "2026-11-29T23:30:00Z", "2026-11-29T23:00:00Z", "2026-11-30T23:00:00Z"},
		{"month Berlin", Quota{Period: Month, Location: berlin}, "2026-10-31T23:30:00Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z"},
		{"rolling day", Quota{Period: Day, Rolling: true}, "1970-01-03T06:00:00Z", "1970-01-03T00:00:00Z", "1970-01-04T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.q.Window(at(tc.now))
			if !w.Start.Equal(at(tc.start)) || !w.End.Equal(at(tc.end)) {
				t.Fatalf("window %v – %v, want %s – %s", w.Start.UTC(), w.End.UTC(), tc.start, tc.end)
			}
			if tc.q.Rolling {
				if w.ID != 2 || w.Prev != 1 || w.PrevWeight != 0.75 {
					t.Fatalf("rolling window %+v", w)
				}
			} else if w.PrevWeight != 0 || w.ID != w.Start.Unix() {
				t.Fatalf("calendar window %+v", w)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	day := 24 * time.Hour
	now := time.Unix(2*86400+6*3600, 0) // a quarter into window 2
	for _, tc := range []struct {
		name      string
		q         Quota
		cur, prev int64
		want      time.Duration
	}{
		{"calendar: to the end of the day", Quota{Period: Day, Limit: 10}, 10, 0, 18 * time.Hour},
		// 10 − 1 − 5 = 4 room; prev 8 must weigh ≤ 4: half-way through.
		{"rolling: previous window drains", Quota{Period: Day, Limit: 10, Rolling: true}, 5, 8, 6 * time.Hour},
		// cur 10 must weigh ≤ 9 after the end: a tenth into the next.
		{"rolling: this window drains", Quota{Period: Day, Limit: 10, Rolling: true}, 10, 0, 18*time.Hour + day/10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.q.RetryAfter(tc.q.Window(now), now, tc.cur, tc.prev)
			if d := got - tc.want; d < -time.Second || d > time.Second {
				t.Fatalf("RetryAfter %v, want %v", got, tc.want)
			}
		})
	}
}
