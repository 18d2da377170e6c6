package e2e

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestResultsInvariants feeds the nemesis's /results invariants crafted
// samples: each untrue one is flagged, of its kind, and the true ones are
// not. Pure: no Kafka, no process (a few milliseconds).
func TestResultsInvariants(t *testing.T) {
	cfg := votegen.Config{Seed: 2, Scale: 0.0005}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	truth := newElectionTruth(cfg, 6, &want)
	if q, err := votegen.Quotas(cfg); err != nil || q != truth.states {
		t.Fatalf("the generator's quotas %v (%v) are not its votes per state %v", q, err, truth.states)
	}
	// Every state counted but the first, half counted: under the truth,
	// with races called and one not.
	part := want
	for c := range part {
		for a := range part[c][0] {
			part[c][0][a] /= 2
		}
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	// sample is a true answer: expectations from the data, served at t0+10s
	// with its view as of t0+8s.
	sample := func(tally *vote.Tally, expected [vote.NumStates]int64) resultsSample {
		r := results.Compute(tally, expected)
		r.SetProducers([]string{truth.id})
		r.AsOf, r.AgeSeconds = t0.Add(8*time.Second), 2
		r.Offsets = map[int]int64{0: 100, 1: 100, 2: 100, 3: 100, 4: 100, 5: 100}
		return resultsSample{replica: "c1", res: r, sent: t0.Add(10 * time.Second), recv: t0.Add(10*time.Second + 30*time.Millisecond)}
	}
	good := sample(&part, truth.states)
	if good.res.ElectoralVotesCalled == 0 {
		t.Fatal("the crafted count calls no race: the calls go unchecked")
	}
	judged := func(t *testing.T, s resultsSample, cut *cutSpan, wantKind int) {
		t.Helper()
		j := newResultsJudge(truth)
		bs := j.judge(&s, cut)
		if wantKind < 0 {
			if len(bs) > 0 {
				t.Errorf("a true sample flagged: %v", bs)
			}
			return
		}
		for _, b := range bs {
			if b.kind == wantKind {
				t.Logf("flagged: %s", b.what)
				return
			}
		}
		t.Errorf("not flagged as %s: %v", kindNames[wantKind], bs)
	}

	t.Run("True", func(t *testing.T) { judged(t, good, nil, -1) })
	t.Run("Unlike withholding", func(t *testing.T) {
		s := good
		s.unlike = true
		s.res.WithholdCalls("No race is called: SCALE differs.")
		judged(t, s, nil, -1)
	})
	t.Run("Nothing counted yet, own expectations", func(t *testing.T) {
		q, _ := votegen.Quotas(votegen.Config{Scale: 0.005})
		s := sample(&vote.Tally{}, q)
		s.res.SetProducers(nil)
		judged(t, s, nil, -1)
	})

	// Item 2: the bug as reproduced: expectations from the counter's own
	// SCALE (its default), races called on them.
	t.Run("Own expectations", func(t *testing.T) {
		q, _ := votegen.Quotas(votegen.Config{Scale: 0.005})
		judged(t, sample(&part, q), nil, kindCalls)
	})
	t.Run("Call the truth does not support", func(t *testing.T) {
		s := good
		for i := range s.res.States {
			if sr := &s.res.States[i]; sr.Status == results.Called {
				sr.Leader = (sr.Leader + 1) % vote.NumCandidates
				break
			}
		}
		judged(t, s, nil, kindCalls)
	})
	t.Run("Wrong winner", func(t *testing.T) {
		s := good
		s.res.Winner = (truth.final.Winner + 1) % vote.NumCandidates
		judged(t, s, nil, kindCalls)
	})
	t.Run("Over the truth", func(t *testing.T) {
		over := part
		over[0][1][0]++ // AK is counted whole
		judged(t, sample(&over, truth.states), nil, kindCalls)
	})
	t.Run("Withheld though alike", func(t *testing.T) {
		s := good
		s.res.WithholdCalls("No race is called.")
		judged(t, s, nil, kindCalls)
	})
	t.Run("Called though unlike", func(t *testing.T) {
		s := good
		s.unlike = true
		judged(t, s, nil, kindCalls)
	})
	t.Run("Withheld yet a winner", func(t *testing.T) {
		s := good
		s.unlike = true
		s.res.WithholdCalls("No race is called.")
		s.res.Winner = truth.final.Winner
		judged(t, s, nil, kindCalls)
	})
	t.Run("Metric", func(t *testing.T) {
		one := &dto.MetricFamily{Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: new(1.0)}}}}
		zero := &dto.MetricFamily{Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: new(0.0)}}}}
		if len(checkWithheld(one, false, false)) == 0 || len(checkWithheld(zero, true, true)) == 0 {
			t.Error("a calls_withheld metric unlike the replica's settings not flagged")
		}
		if len(checkWithheld(zero, false, false)) > 0 || len(checkWithheld(one, true, true)) > 0 || len(checkWithheld(zero, true, false)) > 0 {
			t.Error("a true calls_withheld metric flagged")
		}
	})

	// Item 3: the age as it was when the frame was made, not when served.
	t.Run("Age of the frame", func(t *testing.T) {
		s := good
		s.res.AgeSeconds = 0.4
		judged(t, s, nil, kindAge)
	})
	t.Run("Age too old", func(t *testing.T) {
		s := good
		s.res.AgeSeconds = 2.2
		judged(t, s, nil, kindAge)
	})
	t.Run("Age with no as_of", func(t *testing.T) {
		s := good
		s.res.AsOf = time.Time{}
		judged(t, s, nil, kindAge)
	})
	t.Run("Cut off, claims fresh", func(t *testing.T) {
		judged(t, good, &cutSpan{done: t0.Add(5 * time.Second)}, kindAsOf)
	})
	t.Run("Cut off, says so", func(t *testing.T) {
		judged(t, good, &cutSpan{done: t0.Add(9 * time.Second)}, -1)
		judged(t, good, &cutSpan{done: t0.Add(5 * time.Second), healing: t0.Add(9 * time.Second)}, -1)
	})
	t.Run("As of a time it does not hold", func(t *testing.T) {
		j := newResultsJudge(truth)
		ahead := good
		ahead.replica, ahead.sent, ahead.recv = "c2", t0.Add(-1100*time.Millisecond), t0.Add(-time.Second)
		ahead.res.AsOf, ahead.res.AgeSeconds = t0.Add(-3*time.Second), 2
		ahead.res.Offsets = map[int]int64{3: 150}
		if bs := j.judge(&ahead, nil); len(bs) > 0 {
			t.Fatalf("a true sample flagged: %v", bs)
		}
		if bs := j.judge(&good, nil); len(bs) != 1 || bs[0].kind != kindAsOf {
			t.Errorf("a view as of 9s after another replica showed more not flagged: %v", bs)
		} else {
			t.Logf("flagged: %s", bs[0].what)
		}
		// Within asOfSlack of it: not judged.
		within := good
		within.res.AsOf = ahead.recv.Add(asOfSlack - time.Millisecond)
		within.res.AgeSeconds = within.sent.Sub(within.res.AsOf).Seconds()
		if bs := j.judge(&within, nil); len(bs) > 0 {
			t.Errorf("flagged within the slack: %v", bs)
		}
	})

	// Item 4: votes of the election under another partition count.
	t.Run("Another partition count", func(t *testing.T) {
		s := good
		s.res.SetProducers([]string{votegen.ProducerID(cfg, 4)})
		judged(t, s, nil, kindProducer)
	})
	t.Run("Two producer ids", func(t *testing.T) {
		s := good
		s.res.Producers = []string{votegen.ProducerID(cfg, 4), truth.id}
		judged(t, s, nil, kindProducer)
	})
	t.Run("Counted with no producer id", func(t *testing.T) {
		s := good
		s.res.Producers = nil
		judged(t, s, nil, kindProducer)
	})

	t.Run("Final", func(t *testing.T) {
		all := results.Compute(&want, truth.states)
		all.SetProducers([]string{truth.id})
		if bs := truth.checkFinal(&resultsSample{res: all}); len(bs) > 0 {
			t.Errorf("the whole count flagged: %v", bs)
		}
		if bs := truth.checkFinal(&good); len(bs) == 0 {
			t.Error("a final count short of the whole not flagged")
		}
	})

	// The invariants list a breach as a violation, the first few of a kind.
	t.Run("Violations", func(t *testing.T) {
		v := &violations{start: time.Now()}
		inv := newInvariants(&want, v)
		inv.watchResults(cfg, 6)
		for range violationsPerKind + 3 {
			s := good
			s.res.AgeSeconds = 0.4
			inv.judgeResults(&s, nil)
		}
		if got := len(v.all()); got != violationsPerKind {
			t.Errorf("%d violations listed, want %d", got, violationsPerKind)
		}
		if inv.breaches[kindAge] != violationsPerKind+3 || !strings.Contains(inv.String(), "8 age breaches") {
			t.Errorf("breaches %v, report %q", inv.breaches, inv)
		}
		if n := inv.finish(); n != 1 || !strings.Contains(v.all()[violationsPerKind], "3 more /results age breaches") {
			t.Errorf("finish added %d violations: %q", n, v.all())
		}
	})
}
