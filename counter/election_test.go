package main

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// stateWith returns partition p's state at offset with n votes for
// candidate c in state s.
func stateWith(p int, offset int64, c vote.Candidate, s vote.State, n int64) *checkpoint.State {
	st := &checkpoint.State{Partition: int32(p), Offset: offset}
	st.Tally[c][s][0] = n
	return st
}

func TestElectionKeepsNewestState(t *testing.T) {
	var expected [vote.NumStates]int64
	expected[0], expected[1] = 10, 10
	e := newElection(expected, "r1", slog.New(slog.DiscardHandler))
	e.parts, e.dirty = 2, true
	if got := e.results().Offsets; len(got) != 2 || got[0] != 0 || got[1] != 0 {
		t.Errorf("offsets before any checkpoint: got %v, want both partitions at 0", got)
	}

	for _, tc := range []struct {
		name        string
		p           int
		st          *checkpoint.State
		wantCounted int64
		wantOffsets map[int]int64
	}{
		{"first of partition 0", 0, stateWith(0, 5, 0, 0, 5), 5, map[int]int64{0: 5, 1: 0}},
		{"partition 1 adds", 1, stateWith(1, 3, 1, 1, 3), 8, map[int]int64{0: 5, 1: 3}},
		{"newer replaces", 0, stateWith(0, 9, 0, 0, 9), 12, map[int]int64{0: 9, 1: 3}},
		// A zombie's late checkpoint of an earlier offset is older news.
		{"older ignored", 0, stateWith(0, 7, 0, 0, 7), 12, map[int]int64{0: 9, 1: 3}},
		{"same offset ignored", 1, stateWith(1, 3, 2, 1, 3), 12, map[int]int64{0: 9, 1: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.apply(tc.p, tc.st)
			r := e.results()
			if r.Counted != tc.wantCounted {
				t.Errorf("counted: got %d, want %d", r.Counted, tc.wantCounted)
			}
			if len(r.Offsets) != len(tc.wantOffsets) {
				t.Errorf("offsets: got %v, want %v", r.Offsets, tc.wantOffsets)
			}
			for p, off := range tc.wantOffsets {
				if r.Offsets[p] != off {
					t.Errorf("offsets: got %v, want %v", r.Offsets, tc.wantOffsets)
				}
			}
			if r.Source != "r1" {
				t.Errorf("source: got %q, want r1", r.Source)
			}
		})
	}
}

func TestElectionAsOf(t *testing.T) {
	var expected [vote.NumStates]int64
	expected[0] = 10
	e := newElection(expected, "r1", slog.New(slog.DiscardHandler))
	e.parts = 2
	t0 := time.Date(2024, 11, 5, 20, 0, 0, 0, time.UTC)
	if got := e.results().AsOf; !got.IsZero() {
		t.Errorf("as of before any sync: got %s, want zero", got)
	}
	e.markSynced(0, t0.Add(time.Second))
	if got := e.results().AsOf; !got.IsZero() {
		t.Errorf("as of with one partition of two synced: got %s, want zero", got)
	}
	e.markSynced(1, t0)
	if got := e.results().AsOf; !got.Equal(t0) {
		t.Errorf("as of: got %s, want the oldest sync %s", got, t0)
	}
}

func TestElectionMetrics(t *testing.T) {
	var expected [vote.NumStates]int64
	expected[0], expected[1] = 10, 4 // Alabama, Alaska
	e := newElection(expected, "r1", slog.New(slog.DiscardHandler))
	e.parts = 1
	e.apply(0, stateWith(0, 10, 1, 0, 10)) // Alabama: all 10 to Harris, called
	now := time.Now()
	e.now = func() time.Time { return now }
	e.markSynced(0, now.Add(-2*time.Second))

	got, series := gatherElection(t, e)
	for _, tc := range []struct {
		key  string
		want float64
	}{
		{"votestream_electoral_votes,candidate=Kamala Harris,replica=r1,status=won", 9},
		{"votestream_electoral_votes,candidate=Kamala Harris,replica=r1,status=leading", 0},
		{"votestream_electoral_votes,candidate=Donald J. Trump,replica=r1,status=won", 0},
		{"votestream_election_popular_votes,candidate=Kamala Harris,replica=r1", 10},
		{"votestream_state_reporting_ratio,replica=r1,state=Alabama", 1},
		{"votestream_state_reporting_ratio,replica=r1,state=Alaska", 0},
		{"votestream_state_leader,candidate=Kamala Harris,replica=r1,state=Alabama", 1},
		{"votestream_state_leader,candidate=Donald J. Trump,replica=r1,state=Alabama", 0},
		{"votestream_state_leader,candidate=Kamala Harris,replica=r1,state=Alaska", 0},
		{"votestream_state_called,replica=r1,state=Alabama", 1},
		{"votestream_state_called,replica=r1,state=Alaska", 0},
		{"votestream_election_view_age_seconds,replica=r1", 2},
		{"votestream_election_states_called,replica=r1", 1},
	} {
		if g, ok := got[tc.key]; !ok || g != tc.want {
			t.Errorf("%s: got %v (present: %v), want %v", tc.key, g, ok, tc.want)
		}
	}
	// Only contested states have series: here Alabama and Alaska.
	for name, want := range map[string]int{
		"votestream_electoral_votes":        2 * vote.NumCandidates,
		"votestream_state_reporting_ratio":  2,
		"votestream_state_leader":           2 * vote.NumCandidates,
		"votestream_state_called":           2,
		"votestream_election_popular_votes": vote.NumCandidates,
		// Without a night, no clock.
		"votestream_election_clock_seconds":       0,
		"votestream_election_polls_closed_states": 0,
	} {
		if series[name] != want {
			t.Errorf("%s: got %d series, want %d", name, series[name], want)
		}
	}
	if r := e.results(); r.States[0].Status != results.Called {
		t.Errorf("test setup: Alabama %s, want called", r.States[0].Status)
	}
}

// gatherElection collects e's election metrics as replica r1: each series'
// value by name and labels ("name,label=value,..."), and the number of
// series by name.
func gatherElection(t *testing.T, e *election) (map[string]float64, map[string]int) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newElectionCollector(e, "r1"))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	series := map[string]int{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
			series[f.GetName()]++
		}
	}
	return got, series
}

// TestElectionSeveralProducers checks the view names every producer id its
// checkpoints hold, flags several elections in /results' fields and the
// metrics, and logs the warning once per change, naming the ids.
func TestElectionSeveralProducers(t *testing.T) {
	var expected [vote.NumStates]int64
	expected[0] = 10
	var logs strings.Builder
	e := newElection(expected, "r1", slog.New(slog.NewTextHandler(&logs, nil)))
	e.parts = 2
	withProducers := func(st *checkpoint.State, ids ...string) *checkpoint.State {
		for _, id := range ids {
			st.Producers = append(st.Producers, checkpoint.ProducerSeq{ID: id, Seq: 1})
		}
		return st
	}
	check := func(what string, producers, over float64) {
		t.Helper()
		m, _ := gatherElection(t, e)
		if m["votestream_election_producers,replica=r1"] != producers || m["votestream_election_votes_over_expected,replica=r1"] != over {
			t.Errorf("%s: metrics %v, want %v producers and %v over expected", what, m, producers, over)
		}
	}
	const warnMsg = `msg="election view: the count cannot be one election"`
	var warned string

	e.apply(0, withProducers(stateWith(0, 5, 0, 0, 5), "seed=1"))
	e.apply(1, withProducers(stateWith(1, 5, 0, 0, 5), "seed=1"))
	r := e.results()
	warned = e.logWarning(&r, warned)
	if len(r.Producers) != 1 || r.Warning != "" || strings.Contains(logs.String(), warnMsg) {
		t.Errorf("one election: producers %v, warning %q, logs %s; want one producer, no warning", r.Producers, r.Warning, logs.String())
	}
	check("one election", 1, 0)

	// A second election appears in partition 1 only.
	e.apply(1, withProducers(stateWith(1, 9, 0, 0, 9), "seed=2", "seed=1"))
	for range 2 { // the same warning twice is logged once
		r = e.results()
		warned = e.logWarning(&r, warned)
	}
	if want := []string{"seed=1", "seed=2"}; !slices.Equal(r.Producers, want) || r.OverExpected != 4 || !strings.Contains(r.Warning, "2 elections") {
		t.Errorf("two elections: producers %v, over %d, warning %q; want %v, 4, a warning", r.Producers, r.OverExpected, r.Warning, want)
	}
	check("two elections", 2, 4)
	if n := strings.Count(logs.String(), warnMsg); n != 1 || !strings.Contains(logs.String(), `producer_ids="[seed=1 seed=2]"`) {
		t.Errorf("logged the warning %d times, want once naming both ids:\n%s", n, logs.String())
	}
}

// TestElectionNight: with ELECTION=2024 the view's clock is the newest vote
// of any partition, and polls closed follow it, in /results and metrics.
func TestElectionNight(t *testing.T) {
	cfg := config.Counter{Scale: 0.005, IncludeDC: true, Election: "2024", ReplicaID: "r1"}
	e, err := newElectionFromConfig(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.parts = 2
	if n := e.results().Night; n.States != vote.NumStates || !n.Clock.IsZero() || n.PollsClosed != 0 {
		t.Errorf("before any vote: %+v", n)
	}
	eight := time.Date(2024, 11, 6, 1, 0, 0, 0, time.UTC) // 8 p.m. EST
	a, b := stateWith(0, 5, 0, 9, 5), stateWith(1, 5, 0, 9, 5)
	a.Latest, b.Latest = eight.Add(-time.Minute).UnixMicro(), eight.UnixMicro()
	e.apply(0, a)
	e.apply(1, b)
	r := e.results()
	if !r.Night.Clock.Equal(eight) || r.Night.PollsClosed != 26 {
		t.Errorf("night: clock %s, %d polls closed; want %s, 26", r.Night.Clock, r.Night.PollsClosed, eight)
	}
	got, _ := gatherElection(t, e)
	clock, closed := got["votestream_election_clock_seconds,replica=r1"], got["votestream_election_polls_closed_states,replica=r1"]
	if clock != float64(eight.Unix()) || closed != 26 {
		t.Errorf("metrics: clock %v, polls closed %v", clock, closed)
	}
}

// TestElectionShapeFromProducers: the votes to expect come from the
// election the producer ids name, the counter's settings only when none
// does; when the two disagree, or the ids name several, no race is called,
// and /results, the warning and the metric say so. The counter here is at
// its default SCALE=0.005 and has counted, in every state, as many votes as
// that scale expects: half an election at SCALE=0.01.
func TestElectionShapeFromProducers(t *testing.T) {
	half, err := votegen.Quotas(votegen.Config{Scale: 0.005})
	if err != nil {
		t.Fatal(err)
	}
	double, err := votegen.Quotas(votegen.Config{Scale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	sum := func(q [vote.NumStates]int64) (n int64) {
		for _, v := range q {
			n += v
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		ids      []string
		expected int64  // votes expected
		called   int    // electoral votes called
		withheld string // in calls_withheld and the warning; "" for none
	}{
		{"same as the counter", []string{"votestream:seed=1,scale=0.005,partitions=12"}, sum(half), 535, ""},
		{"no partitions named", []string{"votestream:seed=1,scale=0.005"}, sum(half), 535, ""},
		{"producer at 0.01", []string{"votestream:seed=1,scale=0.01,partitions=12"}, sum(double), 0,
			"the votes are of an election at SCALE=0.01 INCLUDE_DC=false ELECTION=seed, the counter is set to SCALE=0.005 INCLUDE_DC=false ELECTION=seed"},
		{"unknown ids: the counter's settings", []string{"seed=1"}, sum(half), 535, ""},
		{"two sizes", []string{"votestream:seed=1,scale=0.005,partitions=12", "votestream:seed=2,scale=0.01,partitions=12"}, sum(half), 0,
			"elections of 2 different sizes or kinds (SCALE=0.005 INCLUDE_DC=false ELECTION=seed; SCALE=0.01 INCLUDE_DC=false ELECTION=seed)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newElectionFromConfig(config.Counter{Scale: 0.005, Election: "seed", ReplicaID: "r1"}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			e.parts = 1
			st := &checkpoint.State{Partition: 0, Offset: 1}
			for s, n := range half {
				st.Tally[0][s][0] = n
			}
			for _, id := range tc.ids {
				st.Producers = append(st.Producers, checkpoint.ProducerSeq{ID: id, Seq: 1})
			}
			e.apply(0, st)
			r := e.results()
			if r.Expected != tc.expected || r.ElectoralVotesCalled != tc.called {
				t.Errorf("%d votes expected, %d electoral votes called; want %d, %d", r.Expected, r.ElectoralVotesCalled, tc.expected, tc.called)
			}
			m, _ := gatherElection(t, e)
			metric := m["votestream_election_calls_withheld,replica=r1"]
			if tc.withheld == "" && (r.CallsWithheld != "" || metric != 0) {
				t.Errorf("calls withheld (metric %v): %q, want none", metric, r.CallsWithheld)
			}
			if tc.withheld != "" && (!strings.Contains(r.CallsWithheld, tc.withheld) || !strings.Contains(r.Warning, tc.withheld) || metric != 1) {
				t.Errorf("calls withheld %q (metric %v), warning %q; want both saying %q, metric 1", r.CallsWithheld, metric, r.Warning, tc.withheld)
			}
		})
	}
}

// TestElectionNightFromProducer: a counter left at ELECTION=seed that counts
// a 2024 night learns it from the producer id: it shows the night's clock,
// and calls no race since its settings are not the producer's.
func TestElectionNightFromProducer(t *testing.T) {
	e, err := newElectionFromConfig(config.Counter{Scale: 0.005, Election: "seed", ReplicaID: "r1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e.parts = 1
	st := stateWith(0, 5, 0, 9, 5)
	st.Latest = time.Date(2024, 11, 6, 1, 0, 0, 0, time.UTC).UnixMicro()
	st.Producers = []checkpoint.ProducerSeq{{ID: "votestream:seed=1,scale=0.005,dc,election=2024,partitions=3", Seq: 1}}
	e.apply(0, st)
	r := e.results()
	if r.Night.PollsClosed != 26 || r.Night.States != vote.NumStates || r.CallsWithheld == "" {
		t.Errorf("night %+v, calls withheld %q; want 26 of %d polls closed, calls withheld", r.Night, r.CallsWithheld, vote.NumStates)
	}
}
