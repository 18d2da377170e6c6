package memlimit_test

import (
	"runtime/debug"
	"testing"

	"github.com/votestream/votestream/pkg/memlimit"
)

func TestApply(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	tests := []struct {
		name    string
		environ []string
		want    int64
	}{
		{"default", []string{"SCALE=1"}, memlimit.Default},
		{"GOMEMLIMIT set", []string{"GOMEMLIMIT=1GiB"}, old},
		{"GOMEMLIMIT empty", []string{"GOMEMLIMIT="}, memlimit.Default},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(old)
			if got := memlimit.Apply(tt.environ); got != tt.want {
				t.Errorf("Apply(%q) = %d, want %d", tt.environ, got, tt.want)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("limit in force %d, want %d", got, tt.want)
			}
		})
	}
}
