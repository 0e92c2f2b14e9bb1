package audit

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a time given on the command line: RFC 3339
// ("2026-01-02T15:04:05Z", fractions and offsets allowed), a UTC date
// ("2026-01-02"), "now", or a duration relative to now ("-1h", "-90m",
// "-2h30m"; a leading '+' or none means the future).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("empty time")
	case s == "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02), \"now\" nor a duration from now (-1h)", s)
}
