package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
)

// votesMetric has one series per cell a replica counts, for the
// partitions it owns.
const votesMetric = "votestream_votes"

// violations collects what broke an invariant during a run, in order.
type violations struct {
	start time.Time
	mu    sync.Mutex
	list  []string
}

func (v *violations) add(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.list = append(v.list, fmt.Sprintf("+%s ", time.Since(v.start).Round(100*time.Millisecond))+fmt.Sprintf(format, args...))
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.list...)
}

// invariants are what must hold in every sample of the replicas, whatever
// the faults: the replicas' votes summed never exceed the truth in any cell
// (no partition counted twice, no vote counted twice), and no replica's
// /results counted ever goes back. The doubleWatch that samples them
// checks that no partition is shown by two replicas.
type invariants struct {
	truth *vote.Tally
	v     *violations

	mu        sync.Mutex
	rounds    int
	unjudged  int             // rounds answered too slowly to judge
	over      int             // rounds whose sum exceeded the truth
	results   int             // /results read
	backwards int             // /results counted lower than the replica's last
	counted   map[*Proc]int64 // each process's highest counted
	reading   map[*Proc]bool  // a /results read in flight
	judged    []time.Time     // the judged rounds' starts
	overAt    map[time.Time]string

	// The /results invariants (resultsinv_test.go), if watchResults set
	// them: unlike are the replicas whose SCALE is not the election's,
	// cuts those cut off from every broker.
	resJudge *resultsJudge
	unlike   map[*Proc]bool
	cuts     map[*Proc]*cutSpan
	breaches [numKinds]int
}

func newInvariants(truth *vote.Tally, v *violations) *invariants {
	return &invariants{truth: truth, v: v, counted: map[*Proc]int64{}, reading: map[*Proc]bool{}, overAt: map[time.Time]string{},
		unlike: map[*Proc]bool{}, cuts: map[*Proc]*cutSpan{}}
}

// replicaAnswer is one replica's part of a round.
type replicaAnswer struct {
	addr  string
	tally vote.Tally
}

// read takes a replica's votes from its /metrics and checks its /results.
// One /results read at a time per process: answers to one client come in
// the order the replica served them, so a lower counted is the replica's
// own going back, not two reads crossing.
func (inv *invariants) read(ctx context.Context, addr string, p *Proc, families map[string]*dto.MetricFamily) (replicaAnswer, error) {
	c, err := testbed.CountsOf(families)
	if err != nil {
		inv.v.add("replica %s: bad /metrics: %v", addr, err)
		return replicaAnswer{}, err
	}
	inv.judgeWithheld(addr, p, families)
	inv.readResults(ctx, addr, p)
	return replicaAnswer{addr: addr, tally: c.Tally}, nil
}

// readResults checks that the /results counted of process p at addr has
// not gone back since its last read, unless a read of it is in flight, and
// judges the /results invariants.
func (inv *invariants) readResults(ctx context.Context, addr string, p *Proc) {
	inv.mu.Lock()
	busy := inv.reading[p]
	inv.reading[p] = true
	inv.mu.Unlock()
	if busy {
		return
	}
	s, err := readResultsAt(ctx, addr)
	if err == nil {
		inv.withheldOf(ctx, addr, p, &s.res)
	}
	res := s.res
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.reading[p] = false
	if err != nil {
		return
	}
	s.unlike = inv.unlike[p]
	inv.judgeResults(&s, p)
	inv.results++
	if last, ok := inv.counted[p]; ok && res.Counted < last {
		inv.backwards++
		inv.v.add("replica %s: /results counted went back from %d to %d", addr, last, res.Counted)
	}
	inv.counted[p] = max(inv.counted[p], res.Counted)
}

// judge sums a round's votes and checks every cell against the truth,
// unless the round was answered too slowly to be judged (see watchFleet).
func (inv *invariants) judge(at time.Time, answers []replicaAnswer, judged bool) {
	var sum vote.Tally
	for i := range answers {
		sum.Merge(&answers[i].tally)
	}
	inv.mu.Lock()
	inv.rounds++
	if !judged {
		inv.unjudged++
	}
	if judged {
		inv.judged = append(inv.judged, at)
	}
	inv.mu.Unlock()
	if !judged {
		return
	}
	for c := range vote.NumCandidates {
		for s := range vote.NumStates {
			for a := range vote.NumAgeGroups {
				if got, want := sum[c][s][a], inv.truth[c][s][a]; got > want {
					inv.mu.Lock()
					inv.over++
					inv.overAt[at] = fmt.Sprintf("round of %s: replicas' votes sum to %d for %s / %s / %s, the truth is %d",
						at.Format("15:04:05.000"), got, vote.Candidate(c), vote.State(s), vote.AgeGroup(a), want)
					inv.mu.Unlock()
					return
				}
			}
		}
	}
}

// finish adds a violation for every sum over the truth seen in two judged
// rounds in a row; one round alone may be the sampling's (see
// doubleStats.Persisting). And one for the /results breaches of each kind
// past those listed. It returns how many it added.
func (inv *invariants) finish() int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	slices.SortFunc(inv.judged, func(a, b time.Time) int { return a.Compare(b) })
	n := 0
	for i := 1; i < len(inv.judged); i++ {
		if _, ok := inv.overAt[inv.judged[i]]; ok {
			if first, ok := inv.overAt[inv.judged[i-1]]; ok {
				inv.v.add("two rounds in a row over the truth, the first: %s", first)
				n++
			}
		}
	}
	for k, b := range inv.breaches {
		if b > violationsPerKind {
			inv.v.add("%d more /results %s breaches", b-violationsPerKind, kindNames[k])
			n++
		}
	}
	return n
}

func (inv *invariants) String() string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return fmt.Sprintf("%d rounds of every replica's votes summed (%d answered too slowly to judge), %d over the truth in a cell; %d /results read, %d counted going back",
		inv.rounds, inv.unjudged, inv.over, inv.results, inv.backwards) + inv.resultsString()
}
