package vote_test

import (
	"math/rand/v2"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
)

// randomVote returns a vote with every field drawn from r.
func randomVote(r *rand.Rand) vote.Vote {
	var v vote.Vote
	for i := range v.ID {
		v.ID[i] = byte(r.Uint32())
	}
	v.ID[6] = v.ID[6]&0x0f | 0x40
	v.ID[8] = v.ID[8]&0x3f | 0x80
	// 1900 to 2100, so some instants are before 1970.
	v.Time = -2208988800e6 + r.Int64N(200*365*86400e6)
	v.State = vote.State(r.IntN(vote.NumStates))
	v.Candidate = vote.Candidate(r.IntN(vote.NumCandidates))
	v.AgeGroup = vote.AgeGroup(r.IntN(vote.NumAgeGroups))
	return v
}

// randomTally adds n random votes to a tally and returns it with the votes.
func randomTally(t testing.TB, seed uint64, n int) (vote.Tally, []vote.Vote) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	var tally vote.Tally
	votes := make([]vote.Vote, n)
	for i := range votes {
		votes[i] = randomVote(r)
		tally.Add(&votes[i])
	}
	return tally, votes
}

func TestTallyTotals(t *testing.T) {
	tally, votes := randomTally(t, 1, 5000)
	var cand [vote.NumCandidates]int64
	var state [vote.NumCandidates][vote.NumStates]int64
	for _, v := range votes {
		cand[v.Candidate]++
		state[v.Candidate][v.State]++
	}
	if got, want := tally.Total(), int64(len(votes)); got != want {
		t.Errorf("Total() = %d, want %d", got, want)
	}
	for c := range vote.NumCandidates {
		if got := tally.CandidateTotal(vote.Candidate(c)); got != cand[c] {
			t.Errorf("CandidateTotal(%d) = %d, want %d", c, got, cand[c])
		}
		for s := range vote.NumStates {
			if got := tally.StateTotal(vote.Candidate(c), vote.State(s)); got != state[c][s] {
				t.Errorf("StateTotal(%d, %d) = %d, want %d", c, s, got, state[c][s])
			}
		}
	}
	var zero vote.Tally
	if got := zero.Total(); got != 0 {
		t.Errorf("zero tally Total() = %d, want 0", got)
	}
}

func TestTallyAdd(t *testing.T) {
	var tally vote.Tally
	v := vote.Vote{State: 4, Candidate: 1, AgeGroup: 3}
	tally.Add(&v)
	tally.Add(&v)
	if got := tally[1][4][3]; got != 2 {
		t.Errorf("cell [1][4][3] = %d after two adds, want 2", got)
	}
	if got := tally.Total(); got != 2 {
		t.Errorf("Total() = %d, want 2", got)
	}
}

func TestTallyMerge(t *testing.T) {
	a, va := randomTally(t, 2, 3000)
	b, vb := randomTally(t, 3, 2000)
	var want vote.Tally
	for i := range va {
		want.Add(&va[i])
	}
	for i := range vb {
		want.Add(&vb[i])
	}
	got := a
	got.Merge(&b)
	if got != want {
		t.Errorf("Merge: differs from adding both vote sets: %v", got.Diff(&want, 5))
	}
	if a.Total() != int64(len(va)) {
		t.Errorf("Merge changed the copy it was made from: total %d, want %d", a.Total(), len(va))
	}
	var zero vote.Tally
	got = a
	got.Merge(&zero)
	if got != a {
		t.Errorf("merging an empty tally changed it")
	}
}

func TestTallyDiff(t *testing.T) {
	var a, b vote.Tally
	a[0][0][0] = 5
	b[0][0][0] = 3
	a[2][10][1] = 1
	b[5][50][3] = 7
	all := []vote.CellDiff{
		{Candidate: 0, State: 0, AgeGroup: 0, Got: 5, Want: 3},
		{Candidate: 2, State: 10, AgeGroup: 1, Got: 1, Want: 0},
		{Candidate: 5, State: 50, AgeGroup: 3, Got: 0, Want: 7},
	}
	tests := []struct {
		name string
		max  int
		want []vote.CellDiff
	}{
		{"no limit (-1)", -1, all},
		{"very negative", -100, all},
		{"zero", 0, nil},
		{"one", 1, all[:1]},
		{"two", 2, all[:2]},
		{"exact", 3, all},
		{"more than needed", 1000, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.Diff(&b, tt.max)
			if len(got) != len(tt.want) {
				t.Fatalf("Diff(max %d) = %v, want %v", tt.max, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Diff(max %d)[%d] = %+v, want %+v", tt.max, i, got[i], tt.want[i])
				}
			}
		})
	}
	if got := a.Diff(&a, -1); len(got) != 0 {
		t.Errorf("a.Diff(a) = %v, want none", got)
	}
}

func TestTallyDiffEveryCell(t *testing.T) {
	var a, b vote.Tally
	for c := range a {
		for s := range a[c] {
			for g := range a[c][s] {
				a[c][s][g] = 1
			}
		}
	}
	if got, want := len(a.Diff(&b, -1)), vote.NumCandidates*vote.NumStates*vote.NumAgeGroups; got != want {
		t.Errorf("Diff(max -1) of tallies differing everywhere: %d cells, want %d", got, want)
	}
}
