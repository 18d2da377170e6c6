package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// liveScale is a fifth of the seed's sample (229,300 votes): enough for
// every state to be counted and called, small enough for -race.
const liveScale = 0.001

// TestLiveView opens one counter replica's live page in headless Chromium
// while the producer runs and a second replica shares the partitions. The
// page must follow the count without a reload and never go back, and once
// everything is counted show exactly what that replica's /results serves,
// which must be the generator's truth. It saves a screenshot.
func TestLiveView(t *testing.T) {
	chromium := webtest.Chromium(t)
	bin := Binaries(t)
	b := webtest.Start(t, chromium) // first: its start is not the count's time
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 12)
	cfg := votegen.Config{Seed: testSeed, Scale: liveScale}
	truth := truthResults(t, cfg)

	_, addrs := startCounters(t, bin, env, "a", "b")
	base := "http://" + addrs[0]

	page := b.NewPage(ctx, t)
	page.Viewport(ctx, t, 1280, 900, false)
	page.Navigate(ctx, t, base+"/")
	// Before any vote: the page shows the empty election /results serves.
	page.WaitShows(ctx, t, 20*time.Second, func() results.Results { return mustResults(ctx, t, base) })
	page.Eval(ctx, t, "window.__notReloaded = true")

	// About 23 batches of 10,000 votes, one every 300ms: several seconds
	// of count to watch.
	prod := Start(t, "producer", bin.Producer, env.Vars(
		"SEED="+strconv.Itoa(testSeed), "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
		"VOTES_PER_BATCH=10000", "BATCH_INTERVAL=300ms", "OUTPUT_DIR=")...)

	// While it runs, the page must move forward on its own.
	var seen []int64
	last := int64(0)
	for !prod.Exited() {
		shown := page.Shown(ctx, t)
		n := shown.Counted64()
		if n < last {
			t.Errorf("the page went back from %d to %d votes counted", last, n)
		}
		if n != last && n > 0 && n < truth.Counted {
			seen = append(seen, n)
		}
		last = n
		if ctx.Err() != nil {
			t.Fatal("the producer did not finish in time")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := prod.Wait(time.Second); err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Logf("the page showed %d partial counts while the producer ran: %v", len(seen), seen)
	if len(seen) < 2 {
		t.Errorf("the page showed %d partial counts while the producer ran, want at least 2: it does not follow the count", len(seen))
	}

	// Done: /results is the truth, and the page shows it.
	got := waitResults(ctx, t, base, truth.Counted, time.Minute)
	checkResults(t, "replica a /results", &got, &truth)
	shown, _ := page.WaitShows(ctx, t, 20*time.Second, func() results.Results { return mustResults(ctx, t, base) })
	if diff := webtest.Compare(&shown, &truth); diff != "" {
		t.Errorf("the page differs from the generator's truth: %s", diff)
	}
	if !strings.Contains(shown.Winner, truth.WinnerName) {
		t.Errorf("winner banner: got %q, want %q in it", shown.Winner, truth.WinnerName)
	}
	if shown.NotReloaded != true {
		t.Error("the page reloaded to update")
	}
	page.Screenshot(ctx, t, "e2e-live-page.png")
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// TestResultsEveryReplica checks that each of two replicas, owning only some
// partitions, serves the whole election in /results once everything is
// counted: every vote of the generator, per state and candidate, over
// offsets that reach the end of every votes partition. Its election metrics
// and logged table agree.
func TestResultsEveryReplica(t *testing.T) {
	bin := Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 12)
	cfg := votegen.Config{Seed: testSeed + 1, Scale: liveScale}
	truth := truthResults(t, cfg)
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}

	names := []string{"a", "b"}
	procs, addrs := startCounters(t, bin, env, names...)
	prod := Start(t, "producer", bin.Producer, env.Vars(
		"SEED="+strconv.Itoa(testSeed+1), "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
		"BATCH_INTERVAL=0", "OUTPUT_DIR=")...)
	if err := prod.Wait(time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	counted := WaitCounted(t, func() []string { return addrs }, env.Partitions, want.Total(), time.Second, time.Minute)
	CheckTally(t, "counters' own partitions summed", &counted.Tally, &want)
	ends := endOffsets(ctx, t, env)

	for i, addr := range addrs {
		t.Run("replica "+names[i], func(t *testing.T) {
			own, err := testbed.Scrape(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			if own.Partitions == 0 || own.Partitions == env.Partitions {
				t.Errorf("owns %d of %d partitions: the test wants each replica to own some", own.Partitions, env.Partitions)
			}
			got := waitResults(ctx, t, "http://"+addr, truth.Counted, 30*time.Second)
			checkResults(t, "/results", &got, &truth)
			for p, end := range ends {
				if got.Offsets[p] != end {
					t.Errorf("/results covers partition %d up to offset %d, want its end %d", p, got.Offsets[p], end)
				}
			}
			if got.Source != names[i] || got.AsOf.IsZero() || got.AgeSeconds > 30 {
				t.Errorf("/results source %q, as of %s, age %.1fs: want %q, recent", got.Source, got.AsOf, got.AgeSeconds, names[i])
			}
			t.Logf("owns %d partitions, serves all %d: %d votes, %.1f%% reporting, winner %s, age %.2fs",
				own.Partitions, len(got.Offsets), got.Counted, got.PercentReporting, got.WinnerName, got.AgeSeconds)
			checkElectionMetrics(ctx, t, addr, names[i], &truth)
			// The national table every replica logs ends with this line.
			table := fmt.Sprintf("counted %d of %d expected (100.00%% reporting)", truth.Counted, truth.Expected)
			procs[i].WaitOutput(t, regexp.MustCompile(regexp.QuoteMeta(table)), 10*time.Second)
		})
	}
}

// truthResults computes the results the counters must reach for cfg.
func truthResults(t *testing.T, cfg votegen.Config) results.Results {
	t.Helper()
	tally, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	expected, err := votegen.Quotas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return results.Compute(&tally, expected)
}

// checkResults compares the counts and calls of got with want's, state by
// state and candidate by candidate.
func checkResults(t *testing.T, what string, got, want *results.Results) {
	t.Helper()
	if got.Counted != want.Counted || got.Expected != want.Expected {
		t.Errorf("%s: %d counted of %d expected, want %d of %d", what, got.Counted, got.Expected, want.Counted, want.Expected)
	}
	for s := range want.States {
		g, w := &got.States[s], &want.States[s]
		if g.Votes != w.Votes || g.Status != w.Status || g.Leader != w.Leader {
			t.Errorf("%s: %s: votes %v, %s, leader %d; want %v, %s, leader %d", what, w.Name, g.Votes, g.Status, g.Leader, w.Votes, w.Status, w.Leader)
		}
	}
	if got.Candidates != want.Candidates || got.Winner != want.Winner {
		t.Errorf("%s: national results differ:\n got %+v, winner %d\nwant %+v, winner %d", what, got.Candidates, got.Winner, want.Candidates, want.Winner)
	}
}

// startCounters starts one counter replica per name at liveScale and
// returns them with their HTTP addresses, in order.
func startCounters(t *testing.T, bin Bins, env Env, names ...string) ([]*Proc, []string) {
	t.Helper()
	var (
		procs []*Proc
		addrs []string
	)
	for _, name := range names {
		p := Start(t, "counter-"+name, bin.Counter, env.Vars(
			"REPLICA_ID="+name, "SCALE="+strconv.FormatFloat(liveScale, 'f', -1, 64),
			"BATCH_MAX_WAIT=200ms", "GROUP_SESSION_TIMEOUT=3s", "GROUP_REBALANCE_TIMEOUT=5s")...)
		procs = append(procs, p)
		addrs = append(addrs, p.MetricsAddr(t))
	}
	return procs, addrs
}

// mustResults reads base's /results or fails the test.
func mustResults(ctx context.Context, t testing.TB, base string) results.Results {
	t.Helper()
	r, err := webtest.GetResults(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitResults polls base's /results until it counts want votes and returns
// it, failing after timeout.
func waitResults(ctx context.Context, t testing.TB, base string, want int64, timeout time.Duration) results.Results {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		r, err := webtest.GetResults(ctx, base)
		if err == nil && r.Counted == want {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s/results did not reach %d votes within %s: last %d (%v)", base, want, timeout, r.Counted, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endOffsets returns the end of every votes partition.
func endOffsets(ctx context.Context, t testing.TB, env Env) map[int]int64 {
	t.Helper()
	client, err := kafkaio.New(kafkaio.Config{Brokers: []string{env.Brokers}, ClientID: "e2e", DialTimeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ends, err := client.EndOffsets(ctx, env.Topic, env.Partitions)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	return ends
}

// checkElectionMetrics checks a replica's election metrics against want:
// the whole election, labelled with the replica.
func checkElectionMetrics(ctx context.Context, t *testing.T, addr, replica string, want *results.Results) {
	t.Helper()
	families, err := testbed.Metrics(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, name := range []string{"votestream_electoral_votes", "votestream_state_leader", "votestream_state_reporting_ratio"} {
		for _, m := range families[name].GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" {
					if l.GetValue() != replica {
						t.Errorf("%s with replica=%q, want %q", name, l.GetValue(), replica)
					}
					continue
				}
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	check := func(key string, want float64) {
		if g, ok := got[key]; !ok || g != want {
			t.Errorf("metric %s: got %v (present %v), want %v", key, g, ok, want)
		}
	}
	for _, c := range want.Candidates {
		check("votestream_electoral_votes,candidate="+c.Name+",status=won", float64(c.ElectoralVotesWon))
		check("votestream_electoral_votes,candidate="+c.Name+",status=leading", float64(c.ElectoralVotesLeading))
	}
	for _, s := range want.States {
		if s.Status == results.NotContested {
			continue
		}
		check("votestream_state_reporting_ratio,state="+s.Name, 1)
		for _, c := range want.Candidates {
			v := 0.0
			if s.Leader == c.ID {
				v = 1
			}
			check("votestream_state_leader,candidate="+c.Name+",state="+s.Name, v)
		}
	}
}
