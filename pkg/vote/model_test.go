package vote_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
)

// seedQuotas is the seed notebook's state_voters table, copied by hand so a
// change to the Go table is caught.
var seedQuotas = map[string]int{
	"Alabama": 18000, "Alaska": 2750, "Arizona": 27500, "Arkansas": 10500,
	"California": 125000, "Colorado": 21000, "Connecticut": 12500, "Delaware": 3750,
	"Florida": 75000, "Georgia": 37500, "Hawaii": 5000, "Idaho": 6000,
	"Illinois": 47500, "Indiana": 24500, "Iowa": 11500, "Kansas": 10500,
	"Kentucky": 16500, "Louisiana": 15500, "Maine": 5000, "Maryland": 22500,
	"Massachusetts": 27500, "Michigan": 37500, "Minnesota": 20500, "Mississippi": 11000,
	"Missouri": 22500, "Montana": 4000, "Nebraska": 7000, "Nevada": 12500,
	"New Hampshire": 5500, "New Jersey": 32500, "New Mexico": 8000, "New York": 65000,
	"North Carolina": 35000, "North Dakota": 3000, "Ohio": 42500, "Oklahoma": 14000,
	"Oregon": 16000, "Pennsylvania": 47500, "Rhode Island": 4000, "South Carolina": 17500,
	"South Dakota": 3500, "Tennessee": 25000, "Texas": 85000, "Utah": 10000,
	"Vermont": 2500, "Virginia": 30000, "Washington": 29000, "West Virginia": 7000,
	"Wisconsin": 21500, "Wyoming": 2000,
}

func TestStatesSortedForBinarySearch(t *testing.T) {
	states := vote.States()
	names := make([]string, 0, vote.NumStates-1)
	for _, s := range states[:vote.NumStates-1] {
		names = append(names, s.Name)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("the first %d states are not sorted by name (byte order): %q", len(names), names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] == names[i] {
			t.Errorf("state %q appears twice", names[i])
		}
	}
	if got := states[vote.NumStates-1]; got.Name != "District of Columbia" || !got.OptIn {
		t.Errorf("last state = %+v, want opt-in District of Columbia", got)
	}
	for i, s := range states[:vote.NumStates-1] {
		if s.OptIn {
			t.Errorf("state %d %s is opt-in; only DC may be", i, s.Name)
		}
	}
}

func TestStatesMatchSeed(t *testing.T) {
	states := vote.States()
	if got, want := vote.NumStates-1, len(seedQuotas); got != want {
		t.Fatalf("%d seed states in the table, want %d", got, want)
	}
	sum := 0
	codes := map[string]bool{}
	for _, s := range states[:vote.NumStates-1] {
		want, ok := seedQuotas[s.Name]
		if !ok {
			t.Errorf("state %q is not in the seed", s.Name)
			continue
		}
		if s.Quota != want {
			t.Errorf("%s quota = %d, want the seed's %d", s.Name, s.Quota, want)
		}
		sum += s.Quota
		if len(s.Code) != 2 || strings.ToUpper(s.Code) != s.Code || codes[s.Code] {
			t.Errorf("%s code %q: want two unique capital letters", s.Name, s.Code)
		}
		codes[s.Code] = true
	}
	if want := 1_146_500; sum != want {
		t.Errorf("sum of the 50 states' quotas = %d, want %d", sum, want)
	}
}

func TestCandidateWeights(t *testing.T) {
	want := []struct {
		name   string
		weight int
	}{
		{"Donald J. Trump", 6}, {"Kamala Harris", 5}, {"Cornel West", 4},
		{"Jill Stein", 3}, {"Chase Oliver", 2}, {"Claudia De la Cruz", 1},
	}
	for i, c := range vote.Candidates() {
		if c.Name != want[i].name || c.Weight != want[i].weight {
			t.Errorf("candidate %d = %q weight %d, want %q weight %d", i, c.Name, c.Weight, want[i].name, want[i].weight)
		}
	}
	if got, want := *vote.AgeGroups(), [vote.NumAgeGroups]string{"18-25", "26-40", "41-60", "60+"}; got != want {
		t.Errorf("age groups = %q, want %q", got, want)
	}
}

func TestParseRoundTrip(t *testing.T) {
	for i, s := range vote.States() {
		t.Run("state/"+s.Name, func(t *testing.T) {
			got, ok := vote.ParseState([]byte(s.Name))
			if !ok || got != vote.State(i) {
				t.Errorf("ParseState(%q) = %d, %v; want %d, true", s.Name, got, ok, i)
			}
			if got := vote.State(i).String(); got != s.Name {
				t.Errorf("State(%d).String() = %q, want %q", i, got, s.Name)
			}
		})
	}
	for i, c := range vote.Candidates() {
		t.Run("candidate/"+c.Name, func(t *testing.T) {
			got, ok := vote.ParseCandidate([]byte(c.Name))
			if !ok || got != vote.Candidate(i) {
				t.Errorf("ParseCandidate(%q) = %d, %v; want %d, true", c.Name, got, ok, i)
			}
			if got := vote.Candidate(i).String(); got != c.Name {
				t.Errorf("Candidate(%d).String() = %q, want %q", i, got, c.Name)
			}
		})
	}
	for i, a := range vote.AgeGroups() {
		t.Run("age/"+a, func(t *testing.T) {
			got, ok := vote.ParseAgeGroup([]byte(a))
			if !ok || got != vote.AgeGroup(i) {
				t.Errorf("ParseAgeGroup(%q) = %d, %v; want %d, true", a, got, ok, i)
			}
			if got := vote.AgeGroup(i).String(); got != a {
				t.Errorf("AgeGroup(%d).String() = %q, want %q", i, got, a)
			}
		})
	}
}

func TestParseUnknown(t *testing.T) {
	// Names around every table entry: before, after, prefixes, other case.
	var names []string
	for _, s := range vote.States() {
		names = append(names, s.Name[:len(s.Name)-1], s.Name+"x", strings.ToLower(s.Name), s.Code, " "+s.Name)
	}
	names = append(names, "", "A", "Zzz", "\x00", "Alabama\x00")
	for _, n := range names {
		if s, ok := vote.ParseState([]byte(n)); ok {
			t.Errorf("ParseState(%q) = %v, true; want false", n, s)
		}
	}
	for _, n := range []string{"", "Trump", "donald j. trump", "Kamala Harris ", "Claudia De La Cruz"} {
		if c, ok := vote.ParseCandidate([]byte(n)); ok {
			t.Errorf("ParseCandidate(%q) = %v, true; want false", n, c)
		}
	}
	for _, n := range []string{"", "18-24", "60", "60+ ", "17-"} {
		if a, ok := vote.ParseAgeGroup([]byte(n)); ok {
			t.Errorf("ParseAgeGroup(%q) = %v, true; want false", n, a)
		}
	}
}

func TestStringOutOfRange(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{vote.State(vote.NumStates).String(), fmt.Sprintf("State(%d)", vote.NumStates)},
		{vote.Candidate(200).String(), "Candidate(200)"},
		{vote.AgeGroup(4).String(), "AgeGroup(4)"},
		{vote.Reason(vote.NumReasons).String(), fmt.Sprintf("Reason(%d)", vote.NumReasons)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
