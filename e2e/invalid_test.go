package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

// TestInvalidRecords injects records that are not votes with kcat, an
// outside client, between real votes: each is rejected and counted by
// reason, none is counted as a vote, the partitions keep flowing and the
// totals stay exact.
func TestInvalidRecords(t *testing.T) {
	RequireTool(t, "kcat")
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, 4)
	const seed = 7
	cfg := votegen.Config{Seed: seed, Scale: 0.0005}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counter := Start(t, "counter", bin.Counter, env.Vars("BATCH_MAX_WAIT=200ms")...)
	addr := counter.MetricsAddr(t)

	const valid = `{"vote_id":"0c8a1f6e-6a3b-4d0e-9a55-2f1d3c4b5a69","timestamp":"2024-11-05T20:15:30.123456Z",`
	bad := map[string][]string{
		"json":       {`not json at all`, `{"vote_id": "`},
		"type":       {`[1,2,3]`},
		"state":      {valid + `"state":"Atlantis","candidate":"Kamala Harris","age_group":"18-25","vote_count":1}`},
		"candidate":  {valid + `"state":"Ohio","candidate":"Nobody","age_group":"18-25","vote_count":1}`},
		"age_group":  {valid + `"state":"Ohio","candidate":"Jill Stein","age_group":"99+","vote_count":1}`},
		"vote_count": {valid + `"state":"Ohio","candidate":"Jill Stein","age_group":"60+","vote_count":2}`},
		"field":      {valid + `"state":"Ohio","candidate":"Jill Stein","age_group":"60+"}`},
	}
	inject := func(partition string) {
		var lines []string
		for _, recs := range bad {
			lines = append(lines, recs...)
		}
		Kcat(t, strings.NewReader(strings.Join(lines, "\n")+"\n"), "-P", "-b", env.Brokers, "-t", env.Topic, "-p", partition)
	}

	// Topics exist once the counter is serving; garbage goes in before,
	// during and after the votes.
	counter.WaitOutput(t, reMatch(`msg="partitions restored"`), 30*time.Second)
	inject("0")
	prod := Start(t, "producer", bin.Producer, env.Vars("SEED=7", "SCALE=0.0005", "BATCH_INTERVAL=50ms", "VOTES_PER_BATCH=5000", "OUTPUT_DIR=")...)
	inject("1")
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	inject("3")

	got := WaitCounted(t, func() []string { return []string{addr} }, env.Partitions, want.Total(), 500*time.Millisecond, time.Minute)
	CheckTally(t, "counter vs generator", &got.Tally, &want)
	// Rejections are checkpointed with the totals, so wait for the last
	// injection's to show too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := Scrape(t.Context(), addr)
		if err == nil && sameRejections(c.Rejected, bad, 3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejected records by reason: got %v, want each of %v three times", c.Rejected, keys(bad))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(counter.Output(), `msg="record rejected" component=counter`) {
		t.Error("counter did not log the rejected records")
	}
	if err := counter.Stop(30 * time.Second); err != nil {
		t.Errorf("counter: %v", err)
	}
}

func sameRejections(got map[string]int64, bad map[string][]string, times int64) bool {
	for reason, n := range got {
		if n != int64(len(bad[reason]))*times {
			return false
		}
	}
	return true
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
