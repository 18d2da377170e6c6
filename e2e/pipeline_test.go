package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

const testSeed = 20241105

// TestPipeline publishes the whole default sample (1,146,500 votes) with a
// fixed seed while two counter replicas share the group and one of them is
// stopped and restarted midway; the totals must equal the generator's for
// every candidate x state x age group, and equal the JSON files'.
func TestPipeline(t *testing.T) { testPipeline(t, StartBroker(t)) }

// TestKafkaPipeline is TestPipeline on one Apache Kafka node.
func TestKafkaPipeline(t *testing.T) { testPipeline(t, StartKafka(t, KafkaOptions{})) }

func testPipeline(t *testing.T, cluster Bootstrapper) {
	bin := Binaries(t)
	env := NewEnv(t, cluster, 12)
	want, err := votegen.TrueTotals(votegen.Config{Seed: testSeed, Scale: 0.005})
	if err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	counterEnv := env.Vars("BATCH_MAX_WAIT=200ms", "GROUP_SESSION_TIMEOUT=3s", "GROUP_REBALANCE_TIMEOUT=5s")

	var mu sync.Mutex
	addrs := map[string]string{}
	startCounter := func(name string) *Proc {
		p := Start(t, "counter-"+name, bin.Counter, append(counterEnv, "REPLICA_ID="+name)...)
		a := p.MetricsAddr(t)
		mu.Lock()
		addrs[name] = a
		mu.Unlock()
		return p
	}
	current := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, a := range addrs {
			out = append(out, a)
		}
		return out
	}

	a := startCounter("a")
	b := startCounter("b")
	// 55 batches, one every 100ms: the run lasts long enough to restart a
	// replica in the middle of it.
	prod := Start(t, "producer", bin.Producer, env.Vars(
		"SEED="+strconv.Itoa(testSeed), "BATCH_INTERVAL=100ms", "OUTPUT_DIR="+outDir)...)

	// Midway: stop replica b cleanly, let a take everything, bring b back.
	prod.WaitOutput(t, regexp.MustCompile(`msg=progress .*percent=(?:[3-9]\d)\.`), 2*time.Minute)
	if err := b.Stop(30 * time.Second); err != nil {
		t.Fatalf("counter b did not stop cleanly: %v", err)
	}
	mu.Lock()
	delete(addrs, "b")
	mu.Unlock()
	t.Logf("stopped replica b at: %s", lastLine(prod.Output(), "msg=progress"))
	time.Sleep(2 * time.Second)
	b = startCounter("b")

	if err := prod.Wait(3 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	got := WaitCounted(t, current, env.Partitions, want.Total(), time.Second, 2*time.Minute)
	CheckTally(t, "counters vs generator", &got.Tally, &want)
	for reason, n := range got.Rejected {
		if n != 0 {
			t.Errorf("rejected %d records for %s; want none", n, reason)
		}
	}

	files, n, err := ReadVoteFiles(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 55 {
		t.Errorf("got %d JSON files, want 55 (1,146,500 votes / 20,971 per batch)", n)
	}
	CheckTally(t, "JSON files vs generator", &files, &want)

	for _, p := range []*Proc{a, b} {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}

func lastLine(out, substr string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}
