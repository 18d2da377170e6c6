package vote

// Vote is one ballot as the seed describes it. Its vote_count is always 1,
// so it has no field for it: a record claiming another count is invalid.
type Vote struct {
	ID        [16]byte // a UUID, version 4 layout
	Time      int64    // when it was cast, Unix microseconds UTC
	State     State
	Candidate Candidate
	AgeGroup  AgeGroup
}

// Tally counts votes per candidate, state and age group. The zero value is
// an empty tally; it is a plain array, so copying it snapshots it.
type Tally [NumCandidates][NumStates][NumAgeGroups]int64

// Add counts one vote.
func (t *Tally) Add(v *Vote) { t[v.Candidate][v.State][v.AgeGroup]++ }

// Merge adds every cell of u to t.
func (t *Tally) Merge(u *Tally) {
	for c := range t {
		for s := range t[c] {
			for a := range t[c][s] {
				t[c][s][a] += u[c][s][a]
			}
		}
	}
}

// Total is the number of votes counted.
func (t *Tally) Total() int64 {
	var n int64
	for c := range t {
		n += t.CandidateTotal(Candidate(c))
	}
	return n
}

// CandidateTotal is one candidate's votes over all states and age groups.
func (t *Tally) CandidateTotal(c Candidate) int64 {
	var n int64
	for s := range t[c] {
		for a := range t[c][s] {
			n += t[c][s][a]
		}
	}
	return n
}

// StateTotal is one candidate's votes in one state.
func (t *Tally) StateTotal(c Candidate, s State) int64 {
	var n int64
	for a := range t[c][s] {
		n += t[c][s][a]
	}
	return n
}

// Diff lists the cells where t and u differ, at most max of them.
func (t *Tally) Diff(u *Tally, max int) []CellDiff {
	var out []CellDiff
	for c := range t {
		for s := range t[c] {
			for a := range t[c][s] {
				if t[c][s][a] != u[c][s][a] {
					if len(out) == max {
						return out
					}
					out = append(out, CellDiff{Candidate(c), State(s), AgeGroup(a), t[c][s][a], u[c][s][a]})
				}
			}
		}
	}
	return out
}

// CellDiff is one cell where two tallies disagree.
type CellDiff struct {
	Candidate Candidate
	State     State
	AgeGroup  AgeGroup
	Got, Want int64
}
