package peers

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/pkg/votegen"
)

// A peer's row is its run of median rate, its note listing every run; one
// run not exact makes the row that run, whatever the others did.
func TestMedianRun(t *testing.T) {
	run := func(seconds float64, exact bool, note string) peerResult {
		return peerResult{key: "p", votes: 1000, seconds: seconds, exact: exact, note: note}
	}
	m := medianRun([]peerResult{run(1, true, ""), run(4, true, ""), run(2, true, "")})
	if m.seconds != 2 || m.note != "median of 3 runs alone (1 k, 250, 500 votes/s)" {
		t.Errorf("median of 3: %v s, note %q", m.seconds, m.note)
	}
	m = medianRun([]peerResult{run(1, true, ""), run(4, false, "3 cells wrong"), run(2, true, "")})
	if m.exact || m.note != "3 cells wrong" {
		t.Errorf("a run not exact: exact %v, note %q", m.exact, m.note)
	}
	if m = medianRun([]peerResult{run(1, true, "")}); m.note != "" {
		t.Errorf("one run: note %q", m.note)
	}
}

// TestPrintPeers checks the table and that the very last line is exactly
// "peers: votestream=R spark=R kafka_streams=R", with 0 for a peer that
// did not end exact.
func TestPrintPeers(t *testing.T) {
	rs := []peerResult{
		{key: "votestream", label: "votestream", votes: 1000, seconds: 0.5, exact: true, cpu: 0.002, killed: true, killExact: true},
		{key: "spark", label: "spark", votes: 1000, seconds: 10, exact: true, killed: true},
		{key: "kafka_streams", label: "kafka streams", votes: 1000, seconds: 4, exact: false, note: "3 cells wrong"},
	}
	var b strings.Builder
	ceiling := bed.Row{Votes: 1000, Seconds: 0.25, CPU: 0.001}
	printPeers(&b, rs, ceiling, Config{Config: bed.Config{Partitions: 12}, broker: "kafka", scale: 0.02})
	out := strings.TrimRight(b.String(), "\n")
	lines := strings.Split(out, "\n")
	if got, want := lines[len(lines)-1], "peers: votestream=2000 spark=100 kafka_streams=0"; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	for _, want := range []string{
		"| votestream | 1000 | 2 k | 2.00 | 0 MiB | 0.0 s | 0.0 s | yes | yes (killed 0.0 s in, at 0 votes) | 0.0 s |",
		"| spark | 1000 | 100 | - | 0 MiB | 0.0 s | 0.0 s | yes | no | 0.0 s |",
		"| kafka streams | 1000 | 0 | - | 0 MiB | 0.0 s | 0.0 s | no | not run | - |",
		"- kafka_streams: 3 cells wrong",
		"votestream against Spark: 20.0x (goal 10x); against Kafka Streams: n/a (goal 3x)",
		"records discarded): 4 k votes/s, 1.00 CPU µs/vote; votestream's counter at 0.50 of it; 10x Spark would be 1 k votes/s.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`^peers: votestream=\d+ spark=\d+ kafka_streams=\d+$`).MatchString(lines[len(lines)-1]) {
		t.Errorf("last line %q is not the peers line", lines[len(lines)-1])
	}
}

func TestVerdict(t *testing.T) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: 1, Scale: 0.0001})
	if err != nil {
		t.Fatal(err)
	}
	exact := counted{tally: want, records: want.Total()}
	if v := verdict(exact, &want); v != "" {
		t.Errorf("exact totals: verdict %q", v)
	}
	moved := exact
	moved.tally[0][0][0]--
	moved.tally[1][0][0]++
	for _, tc := range []struct {
		name string
		c    counted
		want string
	}{
		{"a vote moved", moved, "2 cells wrong"},
		{"a record twice", counted{tally: want, records: want.Total() + 1}, "read "},
		{"unparsed", counted{tally: want, records: want.Total(), unparsed: 1}, "1 records not parsed"},
	} {
		if v := verdict(tc.c, &want); !strings.HasPrefix(v, tc.want) {
			t.Errorf("%s: verdict %q, want %q...", tc.name, v, tc.want)
		}
	}
}

func TestParsePeersConfig(t *testing.T) {
	if _, err := ParseConfig([]string{"-broker", "redpanda"}, io.Discard); err == nil {
		t.Error("-broker redpanda accepted")
	}
	c, err := ParseConfig(nil, io.Discard)
	if err != nil || c.scale != 0.02 || c.broker != "kafka" || !c.kill {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}
