package votegen_test

import (
	"math"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// The FEC's official national totals ("Federal Elections 2024").
const (
	fecTrump  = 77_302_580
	fecHarris = 75_017_613
)

// trumpStates are the states (statewide) Trump won in 2024; Harris won
// the other 19 and DC.
var trumpStates = map[string]bool{
	"AK": true, "AL": true, "AR": true, "AZ": true, "FL": true, "GA": true, "IA": true, "ID": true,
	"IN": true, "KS": true, "KY": true, "LA": true, "MI": true, "MO": true, "MS": true, "MT": true,
	"NC": true, "ND": true, "NE": true, "NV": true, "OH": true, "OK": true, "PA": true, "SC": true,
	"SD": true, "TN": true, "TX": true, "UT": true, "WI": true, "WV": true, "WY": true,
}

func cfg2024(scale float64) votegen.Config {
	return votegen.Config{Seed: 7, Scale: scale, IncludeDC: true, Election: votegen.Election2024}
}

func TestCertified2024AtScaleOne(t *testing.T) {
	cert := votegen.Certified2024()
	scaled := votegen.Scaled2024(cfg2024(1))
	if scaled != cert {
		t.Fatal("Scaled2024 at SCALE=1 differs from the certified counts")
	}
	var trump, harris int64
	for s := range cert {
		trump += cert[s][0]
		harris += cert[s][1]
	}
	if trump != fecTrump || harris != fecHarris {
		t.Errorf("national Trump %d, Harris %d; FEC: %d, %d", trump, harris, fecTrump, fecHarris)
	}
	q, err := votegen.Quotas(cfg2024(1))
	if err != nil {
		t.Fatal(err)
	}
	for s := range q {
		var want int64
		for _, n := range cert[s] {
			want += n
		}
		if q[s] != want {
			t.Errorf("%s: quota %d, want %d", vote.State(s), q[s], want)
		}
	}
}

// TestScaled2024Rounding: at any scale a state's total is its certified
// total rounded, each candidate is within one vote of the exact share, and
// the same scale gives the same counts.
func TestScaled2024Rounding(t *testing.T) {
	cert := votegen.Certified2024()
	for _, scale := range []float64{0.00001, 0.0007, 0.005, 0.0123, 0.5} {
		got := votegen.Scaled2024(cfg2024(scale))
		if again := votegen.Scaled2024(cfg2024(scale)); again != got {
			t.Fatalf("scale %v: two calls differ", scale)
		}
		for s := range cert {
			var sum, cSum int64
			for c := range cert[s] {
				sum += got[s][c]
				cSum += cert[s][c]
				if d := math.Abs(float64(got[s][c]) - float64(cert[s][c])*scale); d >= 1 {
					t.Errorf("scale %v, %s, %s: %d, exactly %.3f", scale, vote.State(s), vote.Candidate(c), got[s][c], float64(cert[s][c])*scale)
				}
			}
			if want := int64(math.Round(float64(cSum) * scale)); sum != want {
				t.Errorf("scale %v, %s: total %d, want %d", scale, vote.State(s), sum, want)
			}
		}
	}
}

// TestWinners2024: every state goes to its certified winner, at the
// certified count and at the seed's 0.5% sample, and the night ends at
// Trump 312, Harris 226.
func TestWinners2024(t *testing.T) {
	for _, scale := range []float64{1, 0.005} {
		scaled := votegen.Scaled2024(cfg2024(scale))
		var tally vote.Tally
		for s := range scaled {
			for c, n := range scaled[s] {
				tally[c][s][0] = n
			}
		}
		q, err := votegen.Quotas(cfg2024(scale))
		if err != nil {
			t.Fatal(err)
		}
		r := results.Compute(&tally, q)
		for _, st := range r.States {
			want := 1
			if trumpStates[st.Code] {
				want = 0
			}
			if st.Status != results.Called || st.Leader != want {
				t.Errorf("scale %v, %s: %s to %d, want called to %d", scale, st.Code, st.Status, st.Leader, want)
			}
		}
		if got := [2]int{r.Candidates[0].ElectoralVotesWon, r.Candidates[1].ElectoralVotesWon}; got != [2]int{312, 226} {
			t.Errorf("scale %v: Trump %d, Harris %d electoral votes, want 312, 226", scale, got[0], got[1])
		}
	}
}

// TestNight2024: the generated election meets every scaled count exactly,
// no vote comes before its state's polls close, the votes come in the
// clock's order from the first closing to the last report, and each batch
// Fill returns stays within one BatchSpan.
func TestNight2024(t *testing.T) {
	cfg := cfg2024(0.0005)
	g, err := votegen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Timed() {
		t.Fatal("2024 is not timed")
	}
	start, end := votegen.Night()
	var tally vote.Tally
	var last int64
	batch := make([]vote.Vote, 500)
	span := votegen.BatchSpan.Microseconds()
	batches := 0
	for k := g.Fill(batch); k > 0; k = g.Fill(batch) {
		batches++
		if batch[0].Time/span != batch[k-1].Time/span {
			t.Fatalf("batch %d spans %s to %s", batches, time.UnixMicro(batch[0].Time).UTC(), time.UnixMicro(batch[k-1].Time).UTC())
		}
		for i := range batch[:k] {
			v := &batch[i]
			if v.Time < last {
				t.Fatalf("vote %d at %d after one at %d", g.Seq(), v.Time, last)
			}
			last = v.Time
			if close := votegen.PollClose(v.State).UnixMicro(); v.Time <= close {
				t.Fatalf("%s: vote at %s, polls close at %s", v.State, time.UnixMicro(v.Time).UTC(), votegen.PollClose(v.State))
			}
			tally.Add(v)
		}
	}
	if got := time.UnixMicro(last); !got.Equal(end) {
		t.Errorf("last vote at %s, night ends %s", got.UTC(), end)
	}
	if want := time.Date(2024, 11, 6, 0, 0, 0, 0, time.UTC); !start.Equal(want) {
		t.Errorf("night starts %s, want 7 p.m. EST (%s)", start, want)
	}
	if n := int(end.Sub(start) / votegen.BatchSpan); batches < n {
		t.Errorf("%d batches for a night of %d spans", batches, n)
	}
	scaled := votegen.Scaled2024(cfg)
	for s := range scaled {
		for c, n := range scaled[s] {
			if got := tally.StateTotal(vote.Candidate(c), vote.State(s)); got != n {
				t.Errorf("%s, %s: %d votes, want %d", vote.State(s), vote.Candidate(c), got, n)
			}
		}
	}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := tally.Diff(&want, 3); len(d) > 0 {
		t.Errorf("Fill and TrueTotals differ: %+v", d)
	}
}

func TestReported(t *testing.T) {
	pa := vote.State(37) // Pennsylvania: closes 8 p.m., reports for 6 hours
	if vote.States()[pa].Code != "PA" {
		t.Fatal("state 37 is not PA")
	}
	close := votegen.PollClose(pa)
	for _, tt := range []struct {
		after time.Duration
		want  float64
	}{{-time.Minute, 0}, {0, 0}, {3 * time.Hour, 0.75}, {6 * time.Hour, 1}, {7 * time.Hour, 1}} {
		if got := votegen.Reported(pa, close.Add(tt.after)); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Reported %s after closing = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestElectionUnknown(t *testing.T) {
	if _, err := votegen.Quotas(votegen.Config{Scale: 0.005, Election: "1860"}); err == nil {
		t.Error("ELECTION=1860 accepted")
	}
}

// TestNightDefaultLength: with the default SCALE, VOTES_PER_BATCH and
// BATCH_INTERVAL (5s) the night takes about five minutes of batches. A
// tenth of both the scale and the batch size cuts the night into nearly the
// same batches, ten times faster.
func TestNightDefaultLength(t *testing.T) {
	g, err := votegen.New(votegen.Config{Seed: 1, Scale: vote.SeedScale / 10, Election: votegen.Election2024})
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]vote.Vote, 20971/10)
	n := 0
	for g.Fill(batch) > 0 {
		n++
	}
	if d := time.Duration(n) * 5 * time.Second; d < 4*time.Minute || d > 7*time.Minute {
		t.Errorf("%d batches: %s at one per 5s, want about five minutes", n, d)
	}
}
