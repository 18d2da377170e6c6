package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// The /results invariants (docs/nemesis.md; issue 33, items 2 to 4): what
// a replica's /results says must be so in every sample, whatever the
// faults. A replica may be behind; it may not say anything untrue:
//   - item 2, calls: it expects of each state the votes the election
//     holds; it counts no vote the truth lacks; it calls only races the
//     truth's winner wins, and the winner only if the truth's; it withholds
//     calls exactly when its own SCALE is unlike the election's, and its
//     metric says the same;
//   - item 3, age: age_seconds is the age of as_of when served; as_of is
//     no later than the cut of a replica cut off from every broker; and a
//     view as of T holds every checkpoint any replica showed before T;
//   - item 4, partitions: every vote counted carries the election's
//     producer id, which names the partition count it started on.

// withheldMetric is 1 while a replica withholds its calls.
const withheldMetric = "votestream_election_calls_withheld"

// The judging margins. An age is served in tenths of a second, measured
// on the replica's monotonic clock and here on the wall clock. A view's
// as_of is when its last fetch of each checkpoint partition started; a
// broker made leader may serve a high watermark behind its predecessor's
// for a moment, so a view is held to what others showed asOfSlack before.
const (
	ageSlack  = 60 * time.Millisecond
	asOfSlack = 5 * time.Second
	// violationsPerKind caps the violations listed per kind; the counts
	// go on.
	violationsPerKind = 5
)

// The kinds of /results breaches, counted apart.
const (
	kindCalls = iota
	kindAge
	kindAsOf
	kindProducer
	numKinds
)

var kindNames = [numKinds]string{"calls or expectations", "age", "as_of", "producer id"}

// electionTruth is what the test knows of the election being published.
type electionTruth struct {
	id         string // the producer id every vote carries
	partitions int
	votes      [vote.NumStates][vote.NumCandidates]int64
	states     [vote.NumStates]int64 // votes per state: what each must expect
	final      results.Results       // the results once every vote is counted
}

func newElectionTruth(cfg votegen.Config, partitions int, want *vote.Tally) *electionTruth {
	t := &electionTruth{id: votegen.ProducerID(cfg, partitions), partitions: partitions}
	for s := range vote.NumStates {
		for c := range vote.NumCandidates {
			t.votes[s][c] = want.StateTotal(vote.Candidate(c), vote.State(s))
			t.states[s] += t.votes[s][c]
		}
	}
	t.final = results.Compute(want, t.states)
	t.final.SetProducers([]string{t.id})
	return t
}

// resultsSample is one /results answer: sent and recv bound when it was
// served. unlike says the replica's own SCALE is not the election's.
type resultsSample struct {
	replica    string
	res        results.Results
	sent, recv time.Time
	unlike     bool
}

// cutSpan is a replica cut off from every broker: from done (every cut in
// place) until healing (the heal begins; zero while cut).
type cutSpan struct{ done, healing time.Time }

// breach is one invariant broken by a sample.
type breach struct {
	kind int
	what string
}

// checkCalls judges a sample's expectations and calls (item 2) and its
// producer ids (item 4).
func (t *electionTruth) checkCalls(s *resultsSample) []breach {
	r := &s.res
	var bs []breach
	add := func(kind int, format string, args ...any) {
		bs = append(bs, breach{kind, fmt.Sprintf(format, args...)})
	}
	if len(r.Producers) == 0 {
		// Its own settings' expectations, until a checkpoint names the
		// election; every vote carries a producer id, so none is counted.
		if r.Counted != 0 {
			add(kindProducer, "counts %d votes, of no producer id", r.Counted)
		}
		return bs
	}
	if len(r.Producers) != 1 || r.Producers[0] != t.id {
		add(kindProducer, "counts votes of producer ids %q: the election's, on the %d partitions it started on, is %q", r.Producers, t.partitions, t.id)
	}
	for st := range vote.NumStates {
		sr := &r.States[st]
		if sr.Expected != t.states[st] {
			add(kindCalls, "expects %d votes in %s, the election has %d", sr.Expected, sr.Code, t.states[st])
			break
		}
	}
	for st := range vote.NumStates {
		for c := range vote.NumCandidates {
			if got, want := r.States[st].Votes[c], t.votes[st][c]; got > want {
				add(kindCalls, "shows %d votes for %s in %s, the truth is %d", got, vote.Candidate(c), r.States[st].Code, want)
			}
		}
	}
	switch {
	case s.unlike && r.CallsWithheld == "":
		add(kindCalls, "calls races though its SCALE is not the election's: it must withhold them")
	case !s.unlike && r.CallsWithheld != "":
		add(kindCalls, "withholds its calls though its settings are the election's: %s", r.CallsWithheld)
	case !s.unlike && r.Warning != "":
		add(kindCalls, "warns though its settings are the election's: %s", r.Warning)
	}
	if r.CallsWithheld != "" && (r.ElectoralVotesCalled != 0 || r.Winner != results.NoCandidate) {
		add(kindCalls, "withholds its calls, yet shows %d electoral votes called and winner %d", r.ElectoralVotesCalled, r.Winner)
	}
	for st := range vote.NumStates {
		sr, fr := &r.States[st], &t.final.States[st]
		if sr.Status != results.Called {
			continue
		}
		if r.CallsWithheld != "" || fr.Status != results.Called || sr.Leader != fr.Leader {
			add(kindCalls, "calls %s for candidate %d (%d of %d counted); the truth: %s, led by %d", sr.Code, sr.Leader, sr.Counted, sr.Expected, fr.Status, fr.Leader)
		}
	}
	if r.Winner != results.NoCandidate && r.Winner != t.final.Winner {
		add(kindCalls, "names candidate %d the winner; the truth's is %d", r.Winner, t.final.Winner)
	}
	return bs
}

// checkAge judges a sample's age: now minus as_of when served, to the
// tenth (item 3). Computed when a frame is made instead, a view that
// stopped changing would show the age it had then.
func checkAge(s *resultsSample) []breach {
	r := &s.res
	if r.AsOf.IsZero() {
		if r.AgeSeconds != 0 {
			return []breach{{kindAge, fmt.Sprintf("age_seconds %.1f with no as_of", r.AgeSeconds)}}
		}
		return nil
	}
	lo, hi := s.sent.Sub(r.AsOf), s.recv.Sub(r.AsOf)
	slack := ageSlack + hi/1000 // and the clocks' drift over the age
	if got := time.Duration(r.AgeSeconds * float64(time.Second)); got < lo-slack || got > hi+slack {
		return []breach{{kindAge, fmt.Sprintf("age_seconds %.1f, served between %.2f and %.2f s after its as_of %s",
			r.AgeSeconds, lo.Seconds(), hi.Seconds(), r.AsOf.Format("15:04:05.000"))}}
	}
	return nil
}

// checkCut judges the as_of of a replica cut off from every broker: its
// view can have read nothing since the cut.
func checkCut(s *resultsSample, cut *cutSpan) []breach {
	if underCut(s, cut) && s.res.AsOf.After(cut.done) {
		return []breach{{kindAsOf, fmt.Sprintf("cut off from every broker since %s, yet claims a view as of %s",
			cut.done.Format("15:04:05.000"), s.res.AsOf.Format("15:04:05.000"))}}
	}
	return nil
}

// underCut reports whether s, with a view, was read wholly while its
// replica was cut off.
func underCut(s *resultsSample, cut *cutSpan) bool {
	return cut != nil && !s.res.AsOf.IsZero() && !s.sent.Before(cut.done) && (cut.healing.IsZero() || !s.recv.After(cut.healing))
}

// offsetSeen is the highest checkpoint offset of a partition shown by
// any sample received up to some moment: by whom and when.
type offsetSeen struct {
	off int64
	by  string
	at  time.Time
}

// seenUpTo is the highest offsets shown in samples received by at.
type seenUpTo struct {
	at  time.Time
	max []offsetSeen // by partition
}

// resultsJudge judges /results samples, one at a time; it is pure (no
// I/O, no clock) and not safe for concurrent use.
type resultsJudge struct {
	truth *electionTruth
	seen  []seenUpTo // sorted by at, each with the running maximum
	// What the samples covered, for the report: samples judged, those
	// with a race called, with calls withheld, read while cut off, and
	// the final reads; the oldest age served.
	samples, called, withheld, cut, finals int
	maxAge                                 float64
}

func newResultsJudge(truth *electionTruth) *resultsJudge { return &resultsJudge{truth: truth} }

// judge checks a sample, with cut set if its replica was cut off when
// sent, and records its offsets for the samples to come.
func (j *resultsJudge) judge(s *resultsSample, cut *cutSpan) []breach {
	j.count(s, cut)
	bs := j.truth.checkCalls(s)
	bs = append(bs, checkAge(s)...)
	bs = append(bs, checkCut(s, cut)...)
	bs = append(bs, j.checkSeen(s)...)
	j.record(s)
	return bs
}

// count adds s to what the samples covered.
func (j *resultsJudge) count(s *resultsSample, cut *cutSpan) {
	j.samples++
	if s.res.ElectoralVotesCalled > 0 {
		j.called++
	}
	if s.res.CallsWithheld != "" {
		j.withheld++
	}
	if underCut(s, cut) {
		j.cut++
	}
	j.maxAge = max(j.maxAge, s.res.AgeSeconds)
}

// checkSeen judges a sample's as_of against what the replicas showed
// before it: a view as of T holds every checkpoint written before T, so
// at least the offsets any replica showed asOfSlack before T.
func (j *resultsJudge) checkSeen(s *resultsSample) []breach {
	if s.res.AsOf.IsZero() {
		return nil
	}
	before := s.res.AsOf.Add(-asOfSlack)
	i, _ := slices.BinarySearchFunc(j.seen, before, func(u seenUpTo, t time.Time) int { return u.at.Compare(t) })
	// seen[i-1] is the last received at or before: ties sort after.
	for i < len(j.seen) && !j.seen[i].at.After(before) {
		i++
	}
	if i == 0 {
		return nil
	}
	for p, m := range j.seen[i-1].max {
		if got := s.res.Offsets[p]; got < m.off {
			return []breach{{kindAsOf, fmt.Sprintf("claims a view as of %s holding partition %d's checkpoint at offset %d, yet %s showed offset %d at %s",
				s.res.AsOf.Format("15:04:05.000"), p, got, m.by, m.off, m.at.Format("15:04:05.000"))}}
		}
	}
	return nil
}

// record adds a sample's offsets at its recv, keeping seen sorted and its
// running maxima right after an answer that came late.
func (j *resultsJudge) record(s *resultsSample) {
	i, _ := slices.BinarySearchFunc(j.seen, s.recv, func(u seenUpTo, t time.Time) int { return u.at.Compare(t) })
	for i < len(j.seen) && !j.seen[i].at.After(s.recv) {
		i++
	}
	j.seen = slices.Insert(j.seen, i, seenUpTo{at: s.recv, max: make([]offsetSeen, j.truth.partitions)})
	if i > 0 {
		copy(j.seen[i].max, j.seen[i-1].max)
	}
	for k := i; k < len(j.seen); k++ {
		for p := range j.truth.partitions {
			if off := s.res.Offsets[p]; off > j.seen[k].max[p].off {
				j.seen[k].max[p] = offsetSeen{off: off, by: s.replica, at: s.recv}
			}
		}
	}
}

// checkWithheld judges a replica's calls_withheld metric: 1 exactly when
// it withholds its calls. A replica unlike the election withholds them
// once a checkpoint names the election; known says one had (its /results,
// read before the metric, named it).
func checkWithheld(f *dto.MetricFamily, unlike, known bool) []breach {
	for _, m := range f.GetMetric() {
		v := m.GetGauge().GetValue()
		if (!unlike && v != 0) || (unlike && known && v != 1) {
			return []breach{{kindCalls, fmt.Sprintf("%s is %g", withheldMetric, v)}}
		}
	}
	return nil
}

// checkFinal judges a replica's /results once every vote is counted: the
// whole count, of one producer id; a replica like the election has called
// every race the truth decides, for its winner.
func (t *electionTruth) checkFinal(s *resultsSample) []breach {
	bs := t.checkCalls(s)
	r := &s.res
	if r.Counted != t.final.Counted || len(r.Producers) == 0 {
		bs = append(bs, breach{kindCalls, fmt.Sprintf("counted %d of %d votes, of producer ids %q", r.Counted, t.final.Counted, r.Producers)})
	}
	if !s.unlike && (r.ElectoralVotesCalled != t.final.ElectoralVotesCalled || r.Winner != t.final.Winner) {
		bs = append(bs, breach{kindCalls, fmt.Sprintf("all counted, yet %d electoral votes called and winner %d; the truth: %d and %d",
			r.ElectoralVotesCalled, r.Winner, t.final.ElectoralVotesCalled, t.final.Winner)})
	}
	return bs
}

// watchResults has the invariants judge every /results sample against
// the election of cfg on partitions; unlike are the replicas whose own
// SCALE is not the election's. Call it before sampling starts.
func (inv *invariants) watchResults(cfg votegen.Config, partitions int, unlike ...*Proc) {
	inv.resJudge = newResultsJudge(newElectionTruth(cfg, partitions, inv.truth))
	for _, p := range unlike {
		inv.unlike[p] = true
	}
}

// cutOff notes that p is cut off from every broker from now; healing,
// that its heal begins.
func (inv *invariants) cutOff(p *Proc) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.cuts[p] = &cutSpan{done: time.Now()}
}

func (inv *invariants) healing(p *Proc) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if c := inv.cuts[p]; c != nil && c.healing.IsZero() {
		c.healing = time.Now()
	}
}

// judgeResults judges a /results sample of process p. inv.mu is held.
func (inv *invariants) judgeResults(s *resultsSample, p *Proc) {
	if inv.resJudge == nil {
		return
	}
	inv.flag(s.replica, inv.resJudge.judge(s, inv.cuts[p]))
}

// flag counts breaches and lists the first of each kind as violations.
// inv.mu is held.
func (inv *invariants) flag(replica string, bs []breach) {
	for _, b := range bs {
		inv.breaches[b.kind]++
		if inv.breaches[b.kind] <= violationsPerKind {
			inv.v.add("replica %s: /results %s: %s", replica, kindNames[b.kind], b.what)
		}
	}
}

// withheldOf reads p's calls_withheld metric after a /results that named
// the election, for a replica unlike it (the counters' come with their
// votes, in judgeWithheld).
func (inv *invariants) withheldOf(ctx context.Context, addr string, p *Proc, res *results.Results) {
	if inv.resJudge == nil || !inv.unlike[p] || len(res.Producers) == 0 {
		return
	}
	families, err := testbed.Metrics(ctx, addr, withheldMetric)
	if err != nil {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.flag(addr, checkWithheld(families[withheldMetric], true, true))
}

// judgeWithheld judges the calls_withheld metric read with a counter's
// votes: a counter like the election never withholds.
func (inv *invariants) judgeWithheld(addr string, p *Proc, families map[string]*dto.MetricFamily) {
	if inv.resJudge == nil || inv.unlike[p] {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.flag(addr, checkWithheld(families[withheldMetric], false, false))
}

// finalResults judges a replica's /results once everything is counted.
func (inv *invariants) finalResults(replica string, p *Proc, res results.Results) {
	if inv.resJudge == nil {
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.resJudge.finals++
	inv.flag(replica+" (final)", inv.resJudge.truth.checkFinal(&resultsSample{replica: replica, res: res, unlike: inv.unlike[p]}))
}

// resultsString reports the /results samples judged and breaches per kind.
// inv.mu is held.
func (inv *invariants) resultsString() string {
	if inv.resJudge == nil {
		return ""
	}
	j := inv.resJudge
	s := fmt.Sprintf("; %d /results judged (calls, age, as_of, producer id): %d with races called, %d withholding calls, %d while cut off, ages up to %.1fs, %d final",
		j.samples, j.called, j.withheld, j.cut, j.maxAge, j.finals)
	for k, n := range inv.breaches {
		s += fmt.Sprintf(", %d %s breaches", n, kindNames[k])
	}
	return s
}

// checkResultsFinal judges the final /results of the serve replica (res)
// and of one counter, once it has counted every vote.
func (r *nemesisRun) checkResultsFinal(res results.Results) {
	r.inv.finalResults("serve", r.serve, res)
	for addr, p := range r.f.liveProcs() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		got, err := waitServed(ctx, "http://"+addr, r.el.want.Total())
		cancel()
		if err != nil {
			r.viol.add("replica %s: /results never showed the whole count: %v (counted %d)", addr, err, got.Counted)
			return
		}
		r.inv.finalResults(addr, p, got)
		return
	}
}

// scaleVar is SCALE=scale for a counter.
func scaleVar(scale float64) string { return "SCALE=" + strconv.FormatFloat(scale, 'g', -1, 64) }

// readResultsAt reads p's /results at addr and times it.
func readResultsAt(ctx context.Context, addr string) (s resultsSample, err error) {
	s.replica, s.sent = addr, time.Now()
	s.res, err = webtest.GetResults(ctx, "http://"+addr)
	s.recv = time.Now()
	return s, err
}
