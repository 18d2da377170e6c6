package e2e

import (
	"math"
	"testing"
	"time"

	"github.com/votestream/votestream/deploy/promserver"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestDashboardQueries runs every query of the Grafana dashboard against a
// real Prometheus scraping two real counter replicas and the producer during
// an end-to-end run of 2024's night (so the election-night panels have data
// too): each returns data, and the total-votes query equals the exact
// total.
func TestDashboardQueries(t *testing.T) {
	promserver.Binary(t) // skip (or fail in CI) before starting anything
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, 6)
	cfg := votegen.Config{Seed: 99, Scale: 0.001, Election: votegen.Election2024}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counterEnv := env.Vars("BATCH_MAX_WAIT=200ms", "ELECTION=2024", "SCALE=0.001")
	c1 := Start(t, "counter-1", bin.Counter, append(counterEnv, "REPLICA_ID=c1")...)
	c2 := Start(t, "counter-2", bin.Counter, append(counterEnv, "REPLICA_ID=c2")...)
	counters := []string{c1.MetricsAddr(t), c2.MetricsAddr(t)}
	// The producer exits when it is done and a rate needs two scrapes of
	// it, so Prometheus is ready before the producer starts, scraping the
	// address it will serve on; a batch per 15 minutes of the night (or
	// 10,000 votes), 500ms apart, keeps it up for about 30 s, many scrape
	// intervals longer than the check needs.
	prodAddr := freeAddrs(t, 1)[0]
	prom := promserver.Launch(t, append([]string{prodAddr}, counters...))
	prod := Start(t, "producer", bin.Producer, env.Vars("SEED=99", "SCALE=0.001", "ELECTION=2024",
		"VOTES_PER_BATCH=10000", "BATCH_INTERVAL=500ms", "OUTPUT_DIR=", "HTTP_ADDR="+prodAddr)...)
	prom.WaitUp(t)
	prom.CheckDashboard(t, "../deploy/grafana/dashboards/election.json", time.Minute)

	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	got := WaitCounted(t, func() []string { return counters }, env.Partitions, want.Total(), 500*time.Millisecond, time.Minute)
	CheckTally(t, "counters vs generator", &got.Tally, &want)

	deadline := time.Now().Add(30 * time.Second)
	for {
		total := prom.Query(t, "sum(votestream_votes)")
		if total == float64(want.Total()) {
			t.Logf("dashboard total votes: %.0f, exact", total)
			break
		}
		if time.Now().After(deadline) || total > float64(want.Total()) || math.IsNaN(total) {
			t.Fatalf("dashboard total votes: got %v, want %d", total, want.Total())
		}
		time.Sleep(500 * time.Millisecond)
	}
}
