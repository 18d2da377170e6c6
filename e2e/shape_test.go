package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestCallsWithheldOnOtherScale is issue 33's reproduction, scaled down:
// there the producer ran at SCALE=0.01 and the counter at its default
// 0.005, and the counter, taking the votes to expect from its own SCALE,
// called races on them (56 electoral votes at 18% of the real count). Here
// the producer is at 0.0004 and the counter at 0.0002, the same ratio. The
// counter must take the votes to expect from the election the producer id
// names and, as its settings disagree, call no race at any point, saying
// why in /results, its warning, the metric and on the page. The producer,
// paced, is stopped at about 20% of the election (40% of what the
// counter's own settings expect): it exits non-zero.
func TestCallsWithheldOnOtherScale(t *testing.T) {
	bin := Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := StartBroker(t)
	env := NewEnv(t, broker, 4)
	const producerScale, counterScale = "0.0004", "0.0002"
	counter := Start(t, "counter", bin.Counter, env.Vars("SCALE="+counterScale, "BATCH_MAX_WAIT=200ms")...)
	addr := counter.MetricsAddr(t)
	base := "http://" + addr
	prod := Start(t, "producer", bin.Producer, env.Vars("SEED=1", "SCALE="+producerScale,
		"VOTES_PER_BATCH=1000", "BATCH_INTERVAL=200ms", "OUTPUT_DIR=")...) // 92 batches: 18s
	own, real := expectedVotes(t, counterScale), expectedVotes(t, producerScale)

	var last int64
	start := time.Now()
	for deadline := time.Now().Add(3 * time.Minute); ; {
		r, err := webtest.GetResults(ctx, base)
		if err == nil && r.ElectoralVotesCalled > 0 {
			t.Fatalf("%d electoral votes called at %d votes counted (%.1f%% of the election): expected %d, withheld %q",
				r.ElectoralVotesCalled, r.Counted, 100*float64(r.Counted)/float64(real), r.Expected, r.CallsWithheld)
		}
		if err == nil && r.Counted >= own*2/5 {
			if r.Expected != real || !strings.Contains(r.CallsWithheld, "SCALE="+producerScale) || !strings.Contains(r.Warning, r.CallsWithheld) {
				t.Errorf("/results: %d expected, calls withheld %q, warning %q; want %d and both naming SCALE=%s", r.Expected, r.CallsWithheld, r.Warning, real, producerScale)
			}
			break
		}
		if err == nil {
			last = r.Counted
		}
		if time.Now().After(deadline) || prod.Exited() {
			t.Fatalf("counted %d votes, want %d, within 3 minutes (producer exited: %v)", last, own*2/5, prod.Exited())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d votes counted after %s, no race called", own*2/5, time.Since(start).Round(time.Millisecond))
	if err := prod.Stop(30 * time.Second); err == nil {
		t.Error("the producer stopped at 20% of the election exited 0, want non-zero")
	}
	if v := scrapeValue(addr, "votestream_election_calls_withheld"); v != 1 {
		t.Errorf("votestream_election_calls_withheld = %v, want 1", v)
	}

	b := webtest.Start(t, webtest.Chromium(t))
	page := b.NewPage(ctx, t)
	page.Navigate(ctx, t, base+"/")
	var note struct {
		Hidden bool
		Text   string
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		page.EvalInto(ctx, t, `(() => { const w = document.getElementById("warning"); return {Hidden: !w || w.hidden, Text: w ? w.textContent : ""}; })()`, &note)
		if !note.Hidden && strings.Contains(note.Text, "No race is called") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page says nothing of calls withheld after 20s: hidden %v, text %q", note.Hidden, note.Text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// expectedVotes is the votes an election of the seed's model at scale
// expects in all.
func expectedVotes(t *testing.T, scale string) (n int64) {
	t.Helper()
	sc, err := strconv.ParseFloat(scale, 64)
	if err != nil {
		t.Fatal(err)
	}
	q, err := votegen.Quotas(votegen.Config{Scale: sc})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range q {
		n += v
	}
	return n
}
