package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
)

// sampleEvery is how often every replica's /metrics is read to catch a
// partition exported by two replicas at once.
const sampleEvery = 100 * time.Millisecond

// partitionMetric has one series per partition a replica counts.
const partitionMetric = "votestream_counter_partition_offset"

// doubleStats is what a doubleWatch saw.
type doubleStats struct {
	Samples, Doubled int           // rounds taken, and those showing a partition twice
	Longest          time.Duration // longest run of rounds showing one partition twice, start of first to end of last
	MaxGap           time.Duration // longest time between two answered reads of one replica, start to start
	First            string        // the first double seen
	Slowest          time.Duration // the longest one replica took to answer
	SlowestBy        string        // and which, when
	Unjudged         int           // rounds answered too slowly to judge (watchFleet's within)
	// Persisting counts the doubles seen in two judged rounds in a row. A
	// double in one round alone may be the sampling's: the old owner's
	// answer written before it let go, the new owner's after it took over.
	Persisting int
	Gaps       []window // every gap over a second between answered reads of one replica
}

// window is a stretch of a run, from one time to another.
type window struct{ from, to time.Time }

// overlaps reports whether w and o share a moment.
func (w window) overlaps(o window) bool { return w.from.Before(o.to) && o.from.Before(w.to) }

// maxGapWithin is the longest of s.Gaps that overlaps one of windows.
func (s *doubleStats) maxGapWithin(windows []window) time.Duration {
	var longest time.Duration
	for _, g := range s.Gaps {
		for _, w := range windows {
			if g.overlaps(w) {
				longest = max(longest, g.to.Sub(g.from))
			}
		}
	}
	return longest
}

func (s doubleStats) String() string {
	out := fmt.Sprintf("%d samples of every replica's /metrics (each read at most %s apart), %d showed a partition twice, longest %s",
		s.Samples, s.MaxGap.Round(time.Millisecond), s.Doubled, s.Longest.Round(time.Millisecond))
	if s.First != "" {
		out += " (first: " + s.First + ")"
	}
	if s.Unjudged > 0 {
		out += fmt.Sprintf("; %d rounds answered too slowly to judge", s.Unjudged)
	}
	if s.Doubled > 0 {
		out += fmt.Sprintf("; %d doubles lasted two rounds or more", s.Persisting)
	}
	return out
}

// round is one sample: every live replica read at once.
type round struct {
	start, end time.Time
	owners     map[string][]int // replica -> its partitions; absent if it did not answer
	asked      []string
	took       map[string]time.Duration
}

// doubleWatch starts a round every sampleEvery, whether or not the last
// has been answered (a replica starved of CPU may take longer than that
// to answer), until stopped. Each round is judged on its own answers:
// all were asked at the same moment.
type doubleWatch struct {
	f      *fleet
	every  time.Duration
	within time.Duration // judge only rounds answered within it (0: all)
	inv    *invariants   // also judged each round, if set
	stop   chan struct{}
	done   chan struct{}

	mu     sync.Mutex
	rounds []round
}

func watchDoubles(f *fleet) *doubleWatch { return watchFleet(f, sampleEvery, 0, nil) }

// watchFleet is watchDoubles sampling every every, judging inv's
// invariants too if it is set. With within, only rounds whose every answer
// came within it are judged: the answers of one round are written at
// moments up to that far apart, and a handover between them shows the
// partition on both (doubleStats.Persisting counts the doubles that last
// longer than that).
func watchFleet(f *fleet, every, within time.Duration, inv *invariants) *doubleWatch {
	w := &doubleWatch{f: f, every: every, within: within, inv: inv, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var inFlight sync.WaitGroup
		defer inFlight.Wait()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			inFlight.Go(w.sample)
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// sample reads every replica's partitions at once; a replica that does not
// answer within a second is left out of this round.
func (w *doubleWatch) sample() {
	procs := w.f.liveProcs()
	r := round{start: time.Now(), asked: slices.Sorted(maps.Keys(procs)), owners: map[string][]int{}, took: map[string]time.Duration{}}
	names := []string{partitionMetric}
	if w.inv != nil {
		names = append(names, votesMetric, withheldMetric)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var answers []replicaAnswer
	for _, a := range r.asked {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			families, err := testbed.Metrics(ctx, a, names...)
			if err != nil {
				return
			}
			if w.inv != nil {
				ans, err := w.inv.read(ctx, a, procs[a], families)
				if err != nil {
					return
				}
				mu.Lock()
				answers = append(answers, ans)
				mu.Unlock()
			}
			ids := []int{}
			for _, m := range families[partitionMetric].GetMetric() {
				id, _ := strconv.Atoi(m.GetLabel()[0].GetValue())
				ids = append(ids, id)
			}
			mu.Lock()
			r.owners[a], r.took[a] = ids, time.Since(r.start)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.end = time.Now()
	if w.inv != nil {
		w.inv.judge(r.start, answers, w.judged(r))
	}
	w.mu.Lock()
	w.rounds = append(w.rounds, r)
	w.mu.Unlock()
}

// Stop ends the sampling and returns what it saw.
func (w *doubleWatch) Stop() *doubleStats {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	slices.SortFunc(w.rounds, func(a, b round) int { return a.start.Compare(b.start) })
	var s doubleStats
	since := map[int]time.Time{}       // partition -> start of the first round of its current double
	runs := map[int]int{}              // partition -> rounds of its current double
	answered := map[string]time.Time{} // replica -> start of the last round it answered
	for _, r := range w.rounds {
		s.Samples++
		s.judgeGaps(r, answered)
		if !w.judged(r) {
			s.Unjudged++
			continue
		}
		count := map[int][]string{}
		for a, ids := range r.owners {
			for _, p := range ids {
				count[p] = append(count[p], a)
			}
		}
		doubled := false
		for p := range since {
			if len(count[p]) < 2 {
				delete(since, p)
				delete(runs, p)
			}
		}
		for p, by := range count {
			if len(by) < 2 {
				continue
			}
			doubled = true
			if _, ok := since[p]; !ok {
				since[p] = r.start
			}
			if runs[p]++; runs[p] == 2 {
				s.Persisting++
			}
			s.Longest = max(s.Longest, r.end.Sub(since[p]))
			if s.First == "" {
				slices.Sort(by)
				s.First = fmt.Sprintf("partition %d at %s by %v", p, r.start.Format("15:04:05.000"), by)
			}
		}
		if doubled {
			s.Doubled++
		}
	}
	return &s
}

// judged reports whether every answer of r came within w.within.
func (w *doubleWatch) judged(r round) bool {
	for _, d := range r.took {
		if w.within > 0 && d > w.within {
			return false
		}
	}
	return true
}

// judgeGaps updates the longest gap between answered reads of each replica
// asked in r (one not asked, being stopped or paused, starts afresh) and
// the slowest answer.
func (s *doubleStats) judgeGaps(r round, answered map[string]time.Time) {
	for a := range answered {
		if !slices.Contains(r.asked, a) {
			delete(answered, a)
		}
	}
	for _, a := range r.asked {
		if _, ok := r.owners[a]; !ok {
			continue
		}
		if last, ok := answered[a]; ok {
			s.MaxGap = max(s.MaxGap, r.start.Sub(last))
			if r.start.Sub(last) > time.Second {
				s.Gaps = append(s.Gaps, window{last, r.start})
			}
		}
		answered[a] = r.start
		if d := r.took[a]; d > s.Slowest {
			s.Slowest, s.SlowestBy = d, a+" at "+r.start.Format("15:04:05.000")
		}
	}
}

// TestMaxGapWithin: a gap counts against a handover only if they overlap.
func TestMaxGapWithin(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	s := doubleStats{Gaps: []window{{at(0), at(3)}, {at(10), at(11.5)}}}
	for _, c := range []struct {
		windows []window
		want    time.Duration
	}{
		{[]window{{at(5), at(9)}}, 0},                         // between the gaps
		{[]window{{at(2), at(6)}}, 3 * time.Second},           // over the first
		{[]window{{at(11), at(20)}}, 1500 * time.Millisecond}, // over the second
		{[]window{{at(-1), at(30)}}, 3 * time.Second},         // over both
		{[]window{{at(3), at(10)}}, 0},                        // touching both, sharing no moment
	} {
		if got := s.maxGapWithin(c.windows); got != c.want {
			t.Errorf("maxGapWithin(%v) = %s, want %s", c.windows, got, c.want)
		}
	}
}
