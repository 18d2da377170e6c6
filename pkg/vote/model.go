// Package vote is the election domain: candidates, states, age groups, a
// vote, the tally of many votes and their JSON encoding. It imports nothing
// of Kafka or HTTP, so every service and test can share it.
package vote

import "fmt"

// Candidate indexes Candidates.
type Candidate uint8

// State indexes States.
type State uint8

// AgeGroup indexes AgeGroups.
type AgeGroup uint8

// The sizes of the tally's dimensions.
const (
	NumCandidates = 6
	NumStates     = 51 // the seed's 50 states plus DC, which is opt-in
	NumAgeGroups  = 4
)

// CandidateInfo is a candidate as the seed names and weights it.
type CandidateInfo struct {
	Name   string
	Weight int // relative chance of being chosen: the seed's 6:5:4:3:2:1
}

// StateInfo is a state with the seed's quota: 0.5% of its voters.
type StateInfo struct {
	Name  string
	Code  string // USPS code
	Quota int    // votes at the seed's 0.5% sample (SCALE=0.005)
	OptIn bool   // not generated unless asked for (DC is not in the seed)
}

// SeedScale is the sample the seed's quotas stand for: 0.5% of the voters.
const SeedScale = 0.005

// CheckScale is the one rule for a scale (SCALE): a fraction of the
// voters, more than none and at most all of them.
func CheckScale(scale float64) error {
	if !(scale > 0 && scale <= 1) { // NaN fails both
		return fmt.Errorf("%v: must be more than 0 and at most 1", scale)
	}
	return nil
}

// Candidates in the seed's order, with its weights.
func Candidates() *[NumCandidates]CandidateInfo { return &candidates }

// States in the seed's order (alphabetical), DC last.
func States() *[NumStates]StateInfo { return &states }

// AgeGroups as the seed labels them.
func AgeGroups() *[NumAgeGroups]string { return &ageGroups }

func (c Candidate) String() string {
	if int(c) < NumCandidates {
		return candidates[c].Name
	}
	return fmt.Sprintf("Candidate(%d)", uint8(c))
}

func (s State) String() string {
	if int(s) < NumStates {
		return states[s].Name
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

func (a AgeGroup) String() string {
	if int(a) < NumAgeGroups {
		return ageGroups[a]
	}
	return fmt.Sprintf("AgeGroup(%d)", uint8(a))
}

// Read-only tables; exported through the accessors above so callers cannot
// reassign them.
var (
	candidates = [NumCandidates]CandidateInfo{
		{"Donald J. Trump", 6},
		{"Kamala Harris", 5},
		{"Cornel West", 4},
		{"Jill Stein", 3},
		{"Chase Oliver", 2},
		{"Claudia De la Cruz", 1},
	}
	ageGroups = [NumAgeGroups]string{"18-25", "26-40", "41-60", "60+"}
	states    = [NumStates]StateInfo{
		{"Alabama", "AL", 18000, false}, {"Alaska", "AK", 2750, false},
		{"Arizona", "AZ", 27500, false}, {"Arkansas", "AR", 10500, false},
		{"California", "CA", 125000, false}, {"Colorado", "CO", 21000, false},
		{"Connecticut", "CT", 12500, false}, {"Delaware", "DE", 3750, false},
		{"Florida", "FL", 75000, false}, {"Georgia", "GA", 37500, false},
		{"Hawaii", "HI", 5000, false}, {"Idaho", "ID", 6000, false},
		{"Illinois", "IL", 47500, false}, {"Indiana", "IN", 24500, false},
		{"Iowa", "IA", 11500, false}, {"Kansas", "KS", 10500, false},
		{"Kentucky", "KY", 16500, false}, {"Louisiana", "LA", 15500, false},
		{"Maine", "ME", 5000, false}, {"Maryland", "MD", 22500, false},
		{"Massachusetts", "MA", 27500, false}, {"Michigan", "MI", 37500, false},
		{"Minnesota", "MN", 20500, false}, {"Mississippi", "MS", 11000, false},
		{"Missouri", "MO", 22500, false}, {"Montana", "MT", 4000, false},
		{"Nebraska", "NE", 7000, false}, {"Nevada", "NV", 12500, false},
		{"New Hampshire", "NH", 5500, false}, {"New Jersey", "NJ", 32500, false},
		{"New Mexico", "NM", 8000, false}, {"New York", "NY", 65000, false},
		{"North Carolina", "NC", 35000, false}, {"North Dakota", "ND", 3000, false},
		{"Ohio", "OH", 42500, false}, {"Oklahoma", "OK", 14000, false},
		{"Oregon", "OR", 16000, false}, {"Pennsylvania", "PA", 47500, false},
		{"Rhode Island", "RI", 4000, false}, {"South Carolina", "SC", 17500, false},
		{"South Dakota", "SD", 3500, false}, {"Tennessee", "TN", 25000, false},
		{"Texas", "TX", 85000, false}, {"Utah", "UT", 10000, false},
		{"Vermont", "VT", 2500, false}, {"Virginia", "VA", 30000, false},
		{"Washington", "WA", 29000, false}, {"West Virginia", "WV", 7000, false},
		{"Wisconsin", "WI", 21500, false}, {"Wyoming", "WY", 2000, false},
		// DC: about 0.5% of its voters, like the others; the seed has no DC.
		{"District of Columbia", "DC", 2750, true},
	}
)

// ParseCandidate finds a candidate by its exact name. The names all have
// different lengths, so the length picks the one name to compare.
func ParseCandidate(name []byte) (Candidate, bool) {
	if len(name) >= len(candidateByLen) {
		return 0, false
	}
	i := candidateByLen[len(name)]
	if i == 0 || string(name) != candidates[i-1].Name {
		return 0, false
	}
	return Candidate(i - 1), true
}

// candidateByLen maps a name's length to its candidate's index plus one
// (0: none).
var candidateByLen = func() (t [32]uint8) {
	for i := range candidates {
		n := len(candidates[i].Name)
		if n >= len(t) || t[n] != 0 {
			panic("vote: candidate names must have distinct lengths under 32")
		}
		t[n] = uint8(i + 1)
	}
	return t
}()

// ParseState finds a state by its exact name. It is on every vote's path,
// so it hashes a few bytes of the name into a collision-free table and
// compares one name, rather than hashing all of it as a map would.
func ParseState(name []byte) (State, bool) {
	if len(name) < 2 {
		return 0, false
	}
	i := stateTable.slots[stateHash(name, stateTable.mult)]
	if i == 0 || string(name) != states[i-1].Name {
		return 0, false
	}
	return State(i - 1), true
}

// stateHash mixes a name's first two bytes, last byte and length, which
// together tell every state apart, into a slot of stateTable.
func stateHash(name []byte, mult uint32) uint8 {
	x := uint32(name[0]) | uint32(name[len(name)-1])<<8 | uint32(len(name))<<16 | uint32(name[1])<<24
	return uint8((x * mult) >> 24)
}

// stateTable maps a stateHash to a state's index plus one (0: no state).
// Its multiplier is the first that gives every state its own slot.
var stateTable = func() (t struct {
	slots [256]uint8
	mult  uint32
}) {
	for m := uint32(1); m < 1<<16; m++ {
		t.slots = [256]uint8{}
		t.mult = m * 0x9E3779B1
		ok := true
		for i := range states {
			h := stateHash([]byte(states[i].Name), t.mult)
			if t.slots[h] != 0 {
				ok = false
				break
			}
			t.slots[h] = uint8(i + 1)
		}
		if ok {
			return t
		}
	}
	panic("vote: no collision-free state table")
}()

// ParseAgeGroup finds an age group by its exact label. The labels differ
// in their first byte, which picks the one label to compare.
func ParseAgeGroup(label []byte) (AgeGroup, bool) {
	if len(label) == 0 {
		return 0, false
	}
	i := ageGroupByFirst[label[0]]
	if i == 0 || string(label) != ageGroups[i-1] {
		return 0, false
	}
	return AgeGroup(i - 1), true
}

// ageGroupByFirst maps a label's first byte to its age group's index plus
// one (0: none).
var ageGroupByFirst = func() (t [256]uint8) {
	for i, a := range ageGroups {
		if t[a[0]] != 0 {
			panic("vote: age group labels must differ in their first byte")
		}
		t[a[0]] = uint8(i + 1)
	}
	return t
}()
