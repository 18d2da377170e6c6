package pipeline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/votestream/votestream/bench/internal/bed"
)

func TestComparePairs(t *testing.T) {
	ceil := []bed.Row{{Votes: 100, Seconds: 1, CPU: 1e-4}, {Votes: 100, Seconds: 2, CPU: 1e-4}, {Votes: 100, Seconds: 1, CPU: 2e-4}}
	cnt := []bed.Row{{Votes: 100, Seconds: 2, CPU: 2e-4}, {Votes: 100, Seconds: 2, CPU: 1.5e-4}, {Votes: 100, Seconds: 4, CPU: 2e-4}}
	p := comparePairs(ceil, cnt)
	if want := 0.5; p.wall != want {
		t.Errorf("median rate ratio: got %v, want %v (ratios %v)", p.wall, want, p.walls)
	}
	if want := 1.5; p.cpu != want {
		t.Errorf("median CPU ratio: got %v, want %v (ratios %v)", p.cpu, want, p.cpus)
	}
	if got, want := bed.MedianRow(cnt).Seconds, 2.0; got != want {
		t.Errorf("median counter run: got %v s, want %v s", got, want)
	}
}

// TestParseConfigRejects checks that flags out of range stop the bench
// with a message naming the flag, before anything starts.
func TestParseConfigRejects(t *testing.T) {
	for _, args := range [][]string{{"-repeat", "0"}, {"-poll-rate", "-1"}, {"-split-pairs", "0"}} {
		_, err := ParseConfig(args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("ParseConfig(%q) = %v, want an error naming %s", args, err, args[0])
		}
	}
	cfg, err := ParseConfig([]string{"-poll-rate", "0"}, &bytes.Buffer{})
	if err != nil || cfg.viewers.PollRate != 0 {
		t.Errorf("ParseConfig(-poll-rate 0) = %+v, %v; want no polling", cfg.viewers.PollRate, err)
	}
}
