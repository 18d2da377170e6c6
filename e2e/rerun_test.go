package e2e

import (
	"context"
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestMakeRunTwice runs the pipeline as make run does, with the producer's
// and counter's defaults (SEED, SCALE, topics, group), to its end; stops it
// as Ctrl-C does (counter, then broker); then runs it again on the same
// broker data and output folder. The second producer must publish nothing
// and rewrite no file, and the count must end at exactly the default
// sample's totals, 100% reporting, one election and no warning. It takes
// about 50 s with -race; -short runs a smaller election.
func TestMakeRunTwice(t *testing.T) {
	bin := Binaries(t)
	var defaults config.Producer
	if err := config.Parse(&defaults, nil); err != nil {
		t.Fatal(err)
	}
	seed, err := strconv.ParseUint(defaults.Seed, 10, 64)
	if err != nil {
		t.Fatalf("the default SEED %q is not a fixed seed: %v", defaults.Seed, err)
	}
	// Only what make run's own environment cannot give a test: a free HTTP
	// port, a folder of its own, and no 5 s pause between batches; in short
	// mode, a smaller election than the default sample.
	vars := []string{"HTTP_ADDR=127.0.0.1:0"}
	cfg := votegen.Config{Seed: seed, Scale: defaults.Scale}
	if testing.Short() {
		cfg.Scale = 0.0002
		vars = append(vars, "SCALE=0.0002")
	}
	truth := truthResults(t, cfg)
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	broker := StartBroker(t)
	outDir := filepath.Join(t.TempDir(), "vote_stream")
	env := Env{Brokers: broker.Addr, Topic: defaults.Kafka.Topic, Partitions: defaults.Kafka.Partitions}
	vars = append(vars, "KAFKA_BROKERS="+broker.Addr)
	var files map[string]fileSum
	var ends map[int]int64
	for run := 1; run <= 2; run++ {
		counter := Start(t, "counter-run"+strconv.Itoa(run), bin.Counter, vars...)
		addr := counter.MetricsAddr(t)
		prod := Start(t, "producer-run"+strconv.Itoa(run), bin.Producer, append(vars, "OUTPUT_DIR="+outDir, "BATCH_INTERVAL=0")...)
		if err := prod.Wait(4 * time.Minute); err != nil {
			t.Fatalf("run %d: producer: %v", run, err)
		}
		published := prod.WaitOutput(t, regexp.MustCompile(`msg="election published".* resumed_after=(\d+)`), time.Second)
		counted := WaitCounted(t, func() []string { return []string{addr} }, env.Partitions, want.Total(), time.Second, 2*time.Minute)
		CheckTally(t, "run "+strconv.Itoa(run)+" counter", &counted.Tally, &want)
		if counted.Rejected["duplicate"] != 0 {
			t.Errorf("run %d: %d duplicates rejected, want none: the producer published votes twice", run, counted.Rejected["duplicate"])
		}
		got := waitResults(ctx, t, "http://"+addr, truth.Counted, time.Minute)
		checkResults(t, "run "+strconv.Itoa(run)+" /results", &got, &truth)
		if got.PercentReporting != 100 || got.Warning != "" || len(got.Producers) != 1 {
			t.Errorf("run %d: /results %.2f%% reporting, producers %v, warning %q; want 100%%, one, none",
				run, got.PercentReporting, got.Producers, got.Warning)
		}

		switch run {
		case 1:
			files, ends = sumFiles(t, outDir), endOffsets(ctx, t, env)
			if published != "0" {
				t.Errorf("run 1 resumed after %s votes, want 0: the topic was empty", published)
			}
		case 2:
			if published != strconv.FormatInt(want.Total(), 10) {
				t.Errorf("run 2 resumed after %s votes, want all %d", published, want.Total())
			}
			if after := endOffsets(ctx, t, env); !maps.Equal(after, ends) {
				t.Errorf("votes topic ends at %v after run 2, %v after run 1: run 2 published again", after, ends)
			}
			if after := sumFiles(t, outDir); !maps.Equal(after, files) {
				t.Errorf("run 2 changed the JSON files: %d before, %d after, or their contents or times", len(files), len(after))
			}
		}
		t.Logf("run %d: %d votes, %.0f%% reporting, producer resumed after %s votes, %d files", run, got.Counted, got.PercentReporting, published, len(files))
		// Ctrl-C: the counter writes its last checkpoint, then the broker saves its data.
		if err := counter.Stop(30 * time.Second); err != nil {
			t.Errorf("run %d: counter: %v", run, err)
		}
		if run == 1 {
			broker.Restart()
		}
	}
}

// fileSum is what says a file was rewritten: its contents and time.
type fileSum struct {
	sum     [sha256.Size]byte
	modTime time.Time
}

// sumFiles reads every file of dir.
func sumFiles(t *testing.T, dir string) map[string]fileSum {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]fileSum, len(entries))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fileSum{sha256.Sum256(b), info.ModTime()}
	}
	if len(out) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	return out
}

// TestSecondElectionWarns publishes one election, then another seed on the
// same topic. The second producer must say at start that it appends another
// election; the counter must say the topic holds two, naming both producer
// ids, in its log, its metrics, /results, its printed table and the live
// page, while it counts both exactly.
func TestSecondElectionWarns(t *testing.T) {
	bin := Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 12)
	const scale = "0.0002" // 45,860 votes an election
	sc, _ := strconv.ParseFloat(scale, 64)
	truth := truthResults(t, votegen.Config{Seed: testSeed, Scale: sc})
	both := bothElections(t, votegen.Config{Seed: testSeed, Scale: sc}, votegen.Config{Seed: testSeed + 1, Scale: sc})
	ids := []string{"votestream:seed=" + strconv.Itoa(testSeed) + ",scale=" + scale + ",partitions=12",
		"votestream:seed=" + strconv.Itoa(testSeed+1) + ",scale=" + scale + ",partitions=12"}
	counter := Start(t, "counter", bin.Counter, env.Vars("SCALE="+scale, "BATCH_MAX_WAIT=200ms")...)
	base := "http://" + counter.MetricsAddr(t)

	publish := func(seed int) *Proc {
		t.Helper()
		p := Start(t, "producer-"+strconv.Itoa(seed), bin.Producer, env.Vars(
			"SEED="+strconv.Itoa(seed), "SCALE="+scale, "BATCH_INTERVAL=0", "OUTPUT_DIR=")...)
		start := time.Now()
		if err := p.Wait(2 * time.Minute); err != nil {
			t.Fatalf("producer seed %d: %v", seed, err)
		}
		t.Logf("producer seed %d published in %s", seed, time.Since(start).Round(time.Millisecond))
		return p
	}
	first := publish(testSeed)
	got := waitResults(ctx, t, base, truth.Counted, time.Minute)
	if got.Warning != "" || !slices.Equal(got.Producers, ids[:1]) || got.OverExpected != 0 {
		t.Errorf("one election: /results producers %v, over expected %d, warning %q; want %v, 0, none", got.Producers, got.OverExpected, got.Warning, ids[:1])
	}
	if strings.Contains(first.Output(), "another election") {
		t.Errorf("the first producer warned of another election:\n%s", first.Output())
	}

	// The same number of votes again (same scale): 200% reporting.
	second := publish(testSeed + 1)
	line := lastLine(second.Output(), "another election")
	if line == "" || !strings.Contains(line, "level=WARN") || !strings.Contains(line, ids[0]) {
		t.Errorf("the second producer did not warn at start in one line naming %s:\n%s", ids[0], testbed.Tail(second.Output(), 20))
	}
	got = waitResults(ctx, t, base, 2*truth.Counted, 2*time.Minute)
	t.Logf("/results: %d counted of %d, %.0f%%, warning: %s", got.Counted, got.Expected, got.PercentReporting, got.Warning)
	if !slices.Equal(got.Producers, ids) || got.OverExpected != truth.Counted || !strings.Contains(got.Warning, "2 elections") {
		t.Errorf("two elections: /results producers %v, over expected %d, warning %q; want %v, %d, one saying 2 elections",
			got.Producers, got.OverExpected, got.Warning, ids, truth.Counted)
	}
	checkResults(t, "/results of both elections", &got, &both)
	checkWarningMetrics(ctx, t, strings.TrimPrefix(base, "http://"), 2, truth.Counted)
	counter.WaitOutput(t, regexp.MustCompile(`level=WARN msg="election view: the count cannot be one election".* producer_ids="\[`+
		regexp.QuoteMeta(ids[0]+" "+ids[1])+`\]"`), 10*time.Second)
	counter.WaitOutput(t, regexp.MustCompile(`(?m)^WARNING: This topic holds 2 elections`), 10*time.Second)

	t.Run("live page", func(t *testing.T) {
		b := webtest.Start(t, webtest.Chromium(t))
		page := b.NewPage(ctx, t)
		page.Navigate(ctx, t, base+"/")
		deadline := time.Now().Add(20 * time.Second)
		var note struct {
			Hidden bool
			Text   string
		}
		for {
			page.EvalInto(ctx, t, `(() => { const w = document.getElementById("warning"); return {Hidden: !w || w.hidden, Text: w ? w.textContent : ""}; })()`, &note)
			if !note.Hidden && strings.Contains(note.Text, got.Warning) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page shows no note of two elections after 20s: hidden %v, text %q; want %q", note.Hidden, note.Text, got.Warning)
			}
			time.Sleep(100 * time.Millisecond)
		}
		page.Screenshot(ctx, t, "e2e-live-page-two-elections.png")
		if errs := b.PageErrors(); len(errs) > 0 {
			t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
		}
	})
}

// bothElections computes the results of a and b counted together, against
// a's expected votes.
func bothElections(t *testing.T, a, b votegen.Config) results.Results {
	t.Helper()
	ta, err := votegen.TrueTotals(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := votegen.TrueTotals(b)
	if err != nil {
		t.Fatal(err)
	}
	ta.Merge(&tb)
	expected, err := votegen.Quotas(a)
	if err != nil {
		t.Fatal(err)
	}
	return results.Compute(&ta, expected)
}

// checkWarningMetrics checks a counter's election_producers and
// election_votes_over_expected.
func checkWarningMetrics(ctx context.Context, t *testing.T, addr string, producers int, over int64) {
	t.Helper()
	families, err := testbed.Metrics(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"votestream_election_producers":           float64(producers),
		"votestream_election_votes_over_expected": float64(over),
	} {
		ms := families[name].GetMetric()
		if len(ms) != 1 || ms[0].GetGauge().GetValue() != want {
			t.Errorf("metric %s: got %v, want one series of %v", name, ms, want)
		}
	}
}
