package vote_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/vote"
)

const isoMicroUTC = "2006-01-02T15:04:05.000000Z"

func TestAppendTimestampMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	lo := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	hi := time.Date(2100, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	instants := []int64{0, -1, 1, -86400e6, 86400e6 - 1, lo, hi,
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC).UnixMicro(),
		time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro(),
		time.Date(2024, 11, 5, 20, 15, 30, 123456000, time.UTC).UnixMicro(),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro(),
	}
	for range 20000 {
		instants = append(instants, lo+r.Int64N(hi-lo))
	}
	for _, us := range instants {
		want := time.UnixMicro(us).UTC().Format(isoMicroUTC)
		got := string(vote.AppendTimestamp(nil, us))
		if got != want {
			t.Fatalf("AppendTimestamp(%d) = %q, want %q", us, got, want)
		}
		back, ok := vote.ParseTimestamp([]byte(got))
		if !ok || back != us {
			t.Fatalf("ParseTimestamp(%q) = %d, %v; want %d, true", got, back, ok, us)
		}
	}
}

func TestAppendTimestampAppends(t *testing.T) {
	got := string(vote.AppendTimestamp([]byte("at "), 0))
	if want := "at 1970-01-01T00:00:00.000000Z"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestParseTimestampMatchesTime formats random instants in random zones and
// precisions with the time package and checks ParseTimestamp reads the same
// instant as time.Parse, truncated to microseconds.
func TestParseTimestampMatchesTime(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	lo := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	hi := time.Date(2100, 12, 31, 23, 59, 59, 0, time.UTC).UnixNano()
	layouts := []string{
		"2006-01-02T15:04:05",
		"2006-01-02T15:04:05.000000", // Python's isoformat, the seed's form
		"2006-01-02T15:04:05.0",
		"2006-01-02T15:04:05.000",
		"2006-01-02T15:04:05.000000000",
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04:05.000000Z07:00",
		"2006-01-02T15:04:05.000000000Z07:00",
		"2006-01-02T15:04:05.000000-07:00",
	}
	for range 20000 {
		ns := lo + r.Int64N(hi-lo)
		offset := (r.IntN(24*60*2-1) - (24*60 - 1)) * 60 // -23:59 .. +23:59
		if r.IntN(4) == 0 {
			offset = 0
		}
		zone := time.FixedZone("", offset)
		layout := layouts[r.IntN(len(layouts))]
		s := time.Unix(0, ns).In(zone).Format(layout)
		// time.Parse reads a zoneless layout as UTC, as ParseTimestamp does,
		// and UnixMicro truncates the fraction as ParseTimestamp does.
		parsed, err := time.Parse(layout, s)
		if err != nil {
			t.Fatalf("time.Parse(%q, %q): %v", layout, s, err)
		}
		wantUS := parsed.UnixMicro()
		got, ok := vote.ParseTimestamp([]byte(s))
		if !ok || got != wantUS {
			t.Fatalf("ParseTimestamp(%q) = %d (%s), %v; want %d (%s)", s, got,
				time.UnixMicro(got).UTC().Format(isoMicroUTC), ok, wantUS, time.UnixMicro(wantUS).UTC().Format(isoMicroUTC))
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, us int) int64 {
		return time.Date(y, mo, d, h, mi, s, us*1000, time.UTC).UnixMicro()
	}
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2024-11-05T20:15:30.123456", utc(2024, 11, 5, 20, 15, 30, 123456), true},
		{"2024-11-05T20:15:30", utc(2024, 11, 5, 20, 15, 30, 0), true},
		{"2024-11-05T20:15:30Z", utc(2024, 11, 5, 20, 15, 30, 0), true},
		{"2024-11-05T20:15:30.5Z", utc(2024, 11, 5, 20, 15, 30, 500000), true},
		{"2024-11-05T20:15:30.123456789Z", utc(2024, 11, 5, 20, 15, 30, 123456), true},
		{"2024-11-05T20:15:30+02:00", utc(2024, 11, 5, 18, 15, 30, 0), true},
		{"2024-11-05T20:15:30.000001-05:30", utc(2024, 11, 6, 1, 45, 30, 1), true},
		{"2024-11-05T00:00:00+23:59", utc(2024, 11, 4, 0, 1, 0, 0), true},
		{"2024-02-29T00:00:00", utc(2024, 2, 29, 0, 0, 0, 0), true},
		{"2000-02-29T00:00:00", utc(2000, 2, 29, 0, 0, 0, 0), true},
		{"1969-12-31T23:59:59.999999Z", -1, true},
		{"1900-01-01T00:00:00Z", utc(1900, 1, 1, 0, 0, 0, 0), true},
		{"0000-01-01T00:00:00Z", utc(0, 1, 1, 0, 0, 0, 0), true},
		{"9999-12-31T23:59:59.999999Z", utc(9999, 12, 31, 23, 59, 59, 999999), true},
		{"0001-01-01T00:00:00+01:00", utc(0, 12, 31, 23, 0, 0, 0), true},

		{"", 0, false},
		{"2024-11-05", 0, false},
		{"2024-13-05T20:15:30", 0, false},
		{"2024-00-05T20:15:30", 0, false},
		{"2024-02-30T20:15:30", 0, false},
		{"2023-02-29T20:15:30", 0, false},
		{"1900-02-29T20:15:30", 0, false},
		{"2024-04-31T20:15:30", 0, false},
		{"2024-11-00T20:15:30", 0, false},
		{"2024-11-05 20:15:30", 0, false},
		{"2024-11-05t20:15:30", 0, false},
		{"2024-11-05T24:00:00", 0, false},
		{"2024-11-05T20:60:00", 0, false},
		{"2024-11-05T20:15:60", 0, false},
		{"2024-11-05T20:15:3", 0, false},
		{"2024-11-05T20:15:30.", 0, false},
		{"2024-11-05T20:15:30.1234567890", 0, false},
		{"2024-11-05T20:15:30,123", 0, false},
		{"2024-11-05T20:15:30z", 0, false},
		{"2024-11-05T20:15:30 Z", 0, false},
		{"2024-11-05T20:15:30Z ", 0, false},
		{"2024-11-05T20:15:30+02", 0, false},
		{"2024-11-05T20:15:30+0200", 0, false},
		{"2024-11-05T20:15:30+24:00", 0, false},
		{"2024-11-05T20:15:30+02:60", 0, false},
		{"2024-11-05T20:15:30+2:00", 0, false},
		{"2024-11-05T20:15:30UTC", 0, false},
		{"2024-11-05T20:15:30.123EST", 0, false},
		{"+2024-11-05T20:15:30", 0, false},
		{"2O24-11-05T20:15:30", 0, false},
		{"2024-1-05T20:15:30Z", 0, false},
		{"2024/11/05T20:15:30", 0, false},
		{"-024-11-05T20:15:30", 0, false},
		// UTC instant outside what AppendTimestamp can write.
		{"0000-01-01T00:00:00+01:00", 0, false},
		{"9999-12-31T23:59:59-01:00", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := vote.ParseTimestamp([]byte(tt.in))
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseTimestamp(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			if ok {
				// Whatever is accepted can be written back and read again.
				s := vote.AppendTimestamp(nil, got)
				if back, ok := vote.ParseTimestamp(s); !ok || back != got {
					t.Errorf("written back as %q, which reads %d, %v; want %d, true", s, back, ok, got)
				}
			}
		})
	}
}
