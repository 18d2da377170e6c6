package votegen

import (
	"bytes"
	"container/heap"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/votestream/votestream/pkg/vote"
)

// The elections votegen knows: the seed's (every state 6:5:4:3:2:1, no
// clock) and 2024's certified result, replayed as an election night.
const (
	ElectionSeed = "seed"
	Election2024 = "2024"
)

// certified2024 holds the certified 2024 votes of the six candidates per
// state, derived by scripts/election2024/derive.py (source in its header).
//
//go:embed data/2024-president.csv
var certified2024 []byte

// Certified2024 returns the certified 2024 votes per state (indexed like
// vote.States) and candidate (like vote.Candidates).
func Certified2024() [vote.NumStates][vote.NumCandidates]int64 { return certified }

var certified = mustParseCertified(certified2024)

// mustParseCertified reads the embedded file; it is part of the build, so
// a bad one is a programming error.
func mustParseCertified(b []byte) (out [vote.NumStates][vote.NumCandidates]int64) {
	r := csv.NewReader(bytes.NewReader(b))
	r.Comment = '#'
	r.FieldsPerRecord = 1 + vote.NumCandidates
	seen := 0
	for row, err := r.Read(); err != io.EOF; row, err = r.Read() {
		if err != nil {
			panic(fmt.Sprintf("votegen: 2024 data: %v", err))
		}
		if row[0] == "state" {
			continue
		}
		s := slices.IndexFunc(vote.States()[:], func(i vote.StateInfo) bool { return i.Code == row[0] })
		if s < 0 {
			panic("votegen: 2024 data: unknown state " + row[0])
		}
		for c := range vote.NumCandidates {
			n, err := strconv.ParseInt(row[1+c], 10, 64)
			if err != nil || n < 0 {
				panic(fmt.Sprintf("votegen: 2024 data: %s: bad count %q", row[0], row[1+c]))
			}
			out[s][c] = n
		}
		seen++
	}
	if seen != vote.NumStates {
		panic(fmt.Sprintf("votegen: 2024 data: %d states, want %d", seen, vote.NumStates))
	}
	return out
}

// Scaled2024 is each state's and candidate's certified count times scale:
// a state's total is rounded to the nearest vote, then shared among the
// candidates by largest remainder (ties to the earlier candidate), so the
// shares are as close to the certified ones as whole votes allow and the
// same scale always gives the same counts. Scale 1 is the certified count.
// States not generated get 0.
func Scaled2024(cfg Config) [vote.NumStates][vote.NumCandidates]int64 {
	var out [vote.NumStates][vote.NumCandidates]int64
	for s, info := range vote.States() {
		if info.OptIn && !cfg.IncludeDC {
			continue
		}
		out[s] = largestRemainder(certified[s], cfg.Scale)
	}
	return out
}

func largestRemainder(counts [vote.NumCandidates]int64, scale float64) [vote.NumCandidates]int64 {
	var out [vote.NumCandidates]int64
	var sum int64
	for _, n := range counts {
		sum += n
	}
	total := int64(math.Round(float64(sum) * scale))
	rem := make([]float64, len(counts))
	var given int64
	for c, n := range counts {
		x := float64(n) * scale
		out[c] = int64(math.Floor(x))
		rem[c] = x - float64(out[c])
		given += out[c]
	}
	order := []int{0, 1, 2, 3, 4, 5}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for i := 0; given < total; i++ {
		out[order[i%len(order)]]++
		given++
	}
	return out
}

// The night's clock. Every time is Eastern (EST on 5 November 2024,
// UTC−5), in hours after midnight of election day: 19 is 7 p.m., 25 is
// 1 a.m. the next morning.
var nightMidnight = time.Date(2024, 11, 5, 5, 0, 0, 0, time.UTC) // 00:00 EST

// pollClose is each state's latest poll closing, Eastern time (where a
// state spans two zones, the later one's), as NBC's 2024 guide lists them
// (README, "Election night 2024").
var pollClose = [vote.NumStates]float64{
	20, 25, 21, 20.5, 23, 21, 20, 20, 20, 19, // AL AK AZ AR CA CO CT DE FL GA
	24, 23, 20, 19, 21, 21, 19, 21, 20, 20, // HI ID IL IN IA KS KY LA ME MD
	20, 21, 21, 20, 20, 22, 21, 22, 20, 20, // MA MI MN MS MO MT NE NV NH NJ
	21, 21, 19.5, 21, 19.5, 20, 23, 20, 20, 19, // NM NY NC ND OH OK OR PA RI SC
	21, 20, 21, 22, 19, 19, 23, 19.5, 21, 21, // SD TN TX UT VT VA WA WV WI WY
	20, // DC
}

// reportHours is how long after its polls close a state takes to report
// every vote: 3 hours by default; longer where counting is known to be
// slow (mail ballots counted from election day in PA, MI and WI; the
// all-mail or late-counting west).
var reportHours = func() (h [vote.NumStates]float64) {
	slow := map[string]float64{
		"FL": 2.5, "GA": 4, "NC": 4, "NY": 4, "NJ": 4, "IL": 4, "TX": 4,
		"PA": 6, "MI": 5, "WI": 5, "AZ": 6, "NV": 6, "CA": 6,
		"OR": 5, "WA": 5, "UT": 5, "AK": 5,
	}
	for s, info := range vote.States() {
		h[s] = 3
		if x, ok := slow[info.Code]; ok {
			h[s] = x
		}
	}
	return h
}()

// PollClose is when state s's polls close (all of them).
func PollClose(s vote.State) time.Time { return nightTime(pollClose[s]) }

// Night returns the first poll closing and the last report of the 2024
// night: the span the simulated clock runs over.
func Night() (start, end time.Time) {
	first, last := math.Inf(1), 0.0
	for s := range pollClose {
		first = min(first, pollClose[s])
		last = max(last, pollClose[s]+reportHours[s])
	}
	return nightTime(first), nightTime(last)
}

func nightTime(hours float64) time.Time {
	return nightMidnight.Add(time.Duration(hours * float64(time.Hour)))
}

// Reported is the fraction of its votes state s has reported at t: 0
// before its polls close, then 1 − (1 − u)² where u is the time since
// closing over its reporting hours: quick at first, with a long tail
// (half the votes in the first 29% of the time, the last tenth in the
// final 32%), and 1 from closing plus reporting hours on.
func Reported(s vote.State, t time.Time) float64 {
	u := t.Sub(PollClose(s)).Hours() / reportHours[s]
	if u <= 0 {
		return 0
	}
	if u >= 1 {
		return 1
	}
	return 1 - (1-u)*(1-u)
}

// voteTime is when the k-th (from 0) of n votes of a state is reported,
// Unix microseconds, for a state closing at close (Unix microseconds) and
// reporting over span microseconds: the inverse of Reported at (k+1)/n, so
// the last vote comes exactly at the end of the state's reporting and none
// before or at its closing.
func voteTime(close int64, span float64, k, n int64) int64 {
	u := 1 - math.Sqrt(1-float64(k+1)/float64(n))
	return close + max(1, int64(math.Ceil(u*span)))
}

// BatchSpan is the longest stretch of the night one producer batch
// covers (a stretch with more than VOTES_PER_BATCH votes takes several
// batches). With the defaults (SCALE=0.005, VOTES_PER_BATCH=20971,
// BATCH_INTERVAL=5s) the 11 hours from the first closing to the last
// report take 67 batches: about five and a half minutes.
const BatchSpan = 15 * time.Minute

// night yields a timed election's votes in the order of the clock: of all
// states, the one whose next vote is reported first (the earlier state in
// vote.States on a tie), and within it a candidate drawn from the votes it
// has left, so every state ends at exactly its scaled count.
type night struct {
	left  [vote.NumStates][vote.NumCandidates]int64 // votes not yet drawn
	total [vote.NumStates]int64                     // each state's votes
	done  [vote.NumStates]int64                     // drawn so far
	close [vote.NumStates]int64                     // poll closing, Unix µs
	span  [vote.NumStates]float64                   // reporting time, µs
	queue stateQueue
}

func newNight(counts [vote.NumStates][vote.NumCandidates]int64) *night {
	n := &night{left: counts}
	for s := range counts {
		for _, c := range counts[s] {
			n.total[s] += c
		}
		n.close[s] = PollClose(vote.State(s)).UnixMicro()
		n.span[s] = reportHours[s] * float64(time.Hour/time.Microsecond)
		if n.total[s] > 0 {
			n.queue.items = append(n.queue.items, vote.State(s))
			n.queue.at[s] = voteTime(n.close[s], n.span[s], 0, n.total[s])
		}
	}
	heap.Init(&n.queue)
	return n
}

// peek is the time of the next vote, if any is left.
func (n *night) peek() (int64, bool) {
	if len(n.queue.items) == 0 {
		return 0, false
	}
	return n.queue.at[n.queue.items[0]], true
}

// next fills v's state, candidate, age group and time (not its ID).
func (n *night) next(rng *rand.Rand, v *vote.Vote) bool {
	if len(n.queue.items) == 0 {
		return false
	}
	s := n.queue.items[0]
	v.State, v.Time = s, n.queue.at[s]
	r := rng.Int64N(n.total[s] - n.done[s])
	c := 0
	for r >= n.left[s][c] {
		r -= n.left[s][c]
		c++
	}
	n.left[s][c]--
	v.Candidate = vote.Candidate(c)
	v.AgeGroup = vote.AgeGroup(rng.IntN(vote.NumAgeGroups))
	n.done[s]++
	if n.done[s] == n.total[s] {
		heap.Pop(&n.queue)
	} else {
		n.queue.at[s] = voteTime(n.close[s], n.span[s], n.done[s], n.total[s])
		heap.Fix(&n.queue, 0)
	}
	return true
}

// stateQueue is a min-heap of states by their next vote's time.
type stateQueue struct {
	items []vote.State
	at    [vote.NumStates]int64
}

func (q *stateQueue) Len() int { return len(q.items) }
func (q *stateQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	return q.at[a] < q.at[b] || q.at[a] == q.at[b] && a < b
}
func (q *stateQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *stateQueue) Push(x any)    { q.items = append(q.items, x.(vote.State)) }
func (q *stateQueue) Pop() any {
	x := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return x
}
