package memlimit_test

import (
	"runtime/debug"
	"testing"

	"github.com/votestream/votestream/pkg/memlimit"
)

func TestApply(t *testing.T) {
	oldLimit, oldGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit); debug.SetGCPercent(oldGC) })
	tests := []struct {
		name    string
		environ []string
		limit   int64
		gc      int // GOGC in force after
	}{
		{"default", []string{"SCALE=1"}, memlimit.Default, -1},
		{"GOMEMLIMIT set", []string{"GOMEMLIMIT=1GiB"}, oldLimit, 100},
		{"GOMEMLIMIT empty", []string{"GOMEMLIMIT="}, memlimit.Default, -1},
		{"GOGC set", []string{"GOGC=200"}, memlimit.Default, 100},
		{"GOGC empty", []string{"GOGC="}, memlimit.Default, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(oldLimit)
			debug.SetGCPercent(100) // as if the runtime had read GOGC
			if got := memlimit.Apply(tt.environ); got != tt.limit {
				t.Errorf("Apply(%q) = %d, want %d", tt.environ, got, tt.limit)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.limit {
				t.Errorf("limit in force %d, want %d", got, tt.limit)
			}
			if got := debug.SetGCPercent(100); got != tt.gc {
				t.Errorf("GOGC in force %d, want %d", got, tt.gc)
			}
		})
	}
}
