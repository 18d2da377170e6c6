package results

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

func TestElectoralVotes(t *testing.T) {
	var states, all int
	for s, info := range vote.States() {
		ev := ElectoralVotes(vote.State(s))
		if ev < 3 {
			t.Errorf("%s: got %d electoral votes, want at least 3", info.Name, ev)
		}
		all += ev
		if !info.OptIn {
			states += ev
		}
	}
	if all != TotalElectoralVotes || states != 535 {
		t.Errorf("got %d in all and %d in the 50 states, want %d and 535", all, states, TotalElectoralVotes)
	}
	for _, tc := range []struct {
		code string
		want int
	}{
		{"CA", 54}, {"TX", 40}, {"FL", 30}, {"NY", 28}, {"PA", 19}, {"IL", 19},
		{"ME", 4}, {"NE", 5}, {"WY", 3}, {"DC", 3}, {"NC", 16}, {"GA", 16},
	} {
		if got := ElectoralVotes(stateByCode(t, tc.code)); got != tc.want {
			t.Errorf("%s: got %d electoral votes, want %d", tc.code, got, tc.want)
		}
	}
	if got := ElectoralVotes(vote.NumStates); got != 0 {
		t.Errorf("out of range: got %d, want 0", got)
	}
}

func TestStateCall(t *testing.T) {
	const (
		trump  = 0
		harris = 1
		west   = 2
	)
	for _, tc := range []struct {
		name     string
		votes    []int64 // per candidate, the rest 0
		expected int64
		status   Status
		leader   int
		runnerUp int
		margin   int64
	}{
		{"not contested", nil, 0, NotContested, NoCandidate, NoCandidate, 0},
		{"votes where none expected", []int64{5, 1}, 0, NotContested, NoCandidate, NoCandidate, 0},
		{"nothing counted", nil, 100, NoVotes, NoCandidate, NoCandidate, 0},
		{"lone first vote", []int64{0, 1}, 100, Leading, harris, trump, 1},
		{"tie with votes left", []int64{10, 10}, 100, Tied, NoCandidate, NoCandidate, 0},
		{"final tie stays uncalled", []int64{50, 50}, 100, Tied, NoCandidate, NoCandidate, 0},
		{"three-way tie", []int64{3, 3, 3}, 9, Tied, NoCandidate, NoCandidate, 0},
		// 60+30 counted, 10 left: 30+10 < 60.
		{"called early", []int64{60, 30}, 100, Called, trump, harris, 30},
		// 50+40 counted, 10 left: the runner-up could reach a tie.
		{"remaining equals margin", []int64{50, 40}, 100, Leading, trump, harris, 10},
		// 50+41 counted, 9 left: 41+9 = 50 ties at best.
		{"remaining one short of margin", []int64{50, 41}, 100, Leading, trump, harris, 9},
		// 51+40 counted, 9 left: 40+9 < 51.
		{"remaining below margin", []int64{51, 40}, 100, Called, trump, harris, 11},
		{"complete by one vote", []int64{50, 51}, 101, Called, harris, trump, 1},
		{"runner-up is the second largest", []int64{40, 5, 30}, 100, Leading, trump, west, 10},
		{"third place cannot matter", []int64{5, 60, 20}, 100, Called, harris, west, 40},
		{"tie for second", []int64{40, 20, 20}, 100, Leading, trump, harris, 20},
		{"more counted than expected", []int64{70, 40}, 100, Called, trump, harris, 30},
		{"over-count with a tie", []int64{60, 60}, 100, Tied, NoCandidate, NoCandidate, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const s = 4 // California: 54 electoral votes
			var tally vote.Tally
			for c, n := range tc.votes {
				tally[c][s][c%vote.NumAgeGroups] = n
			}
			var expected [vote.NumStates]int64
			expected[s] = tc.expected
			r := Compute(&tally, expected)
			got := r.States[s]
			if got.Status != tc.status || got.Leader != tc.leader || got.RunnerUp != tc.runnerUp || got.Margin != tc.margin {
				t.Fatalf("got status %q leader %d runner-up %d margin %d, want %q %d %d %d",
					got.Status, got.Leader, got.RunnerUp, got.Margin, tc.status, tc.leader, tc.runnerUp, tc.margin)
			}
			wantWon, wantLeading := 0, 0
			switch tc.status {
			case Called:
				wantWon = 54
			case Leading:
				wantLeading = 54
			}
			if tc.leader != NoCandidate {
				c := r.Candidates[tc.leader]
				if c.ElectoralVotesWon != wantWon || c.ElectoralVotesLeading != wantLeading {
					t.Errorf("leader's electoral votes: got won %d leading %d, want %d %d",
						c.ElectoralVotesWon, c.ElectoralVotesLeading, wantWon, wantLeading)
				}
				if got.LeaderName != vote.Candidates()[tc.leader].Name {
					t.Errorf("leader name: got %q", got.LeaderName)
				}
			}
			if got.Remaining < 0 || got.Counted+got.Remaining < got.Expected {
				t.Errorf("got remaining %d with %d of %d counted", got.Remaining, got.Counted, got.Expected)
			}
		})
	}
}

func TestComputeNational(t *testing.T) {
	var tally vote.Tally
	var expected [vote.NumStates]int64
	ca, tx, ny, dc := stateByCode(t, "CA"), stateByCode(t, "TX"), stateByCode(t, "NY"), stateByCode(t, "DC")
	expected[ca], expected[tx], expected[ny] = 100, 100, 100
	tally[1][ca][0] = 80 // Harris: California called
	tally[0][ca][1] = 10
	tally[0][tx][2] = 30 // Trump: Texas leading
	tally[1][tx][3] = 20
	tally[2][dc][0] = 7 // West: DC not contested, but its votes count

	r := Compute(&tally, expected)
	if r.Counted != 147 || r.Expected != 300 {
		t.Errorf("got counted %d expected %d, want 147 300", r.Counted, r.Expected)
	}
	if want := 100 * 140.0 / 300; r.PercentReporting != want {
		t.Errorf("got %v%% reporting, want %v", r.PercentReporting, want)
	}
	if r.ElectoralVotesAtStake != 54+40+28 || r.ElectoralVotesCalled != 54 {
		t.Errorf("got %d at stake, %d called, want 122 54", r.ElectoralVotesAtStake, r.ElectoralVotesCalled)
	}
	for _, tc := range []struct {
		c                 int
		votes             int64
		won, leading      int
		statesW, statesLd int
	}{
		{0, 40, 0, 40, 0, 1},
		{1, 100, 54, 0, 1, 0},
		{2, 7, 0, 0, 0, 0},
		{3, 0, 0, 0, 0, 0},
	} {
		got := r.Candidates[tc.c]
		if got.Votes != tc.votes || got.ElectoralVotesWon != tc.won || got.ElectoralVotesLeading != tc.leading ||
			got.StatesWon != tc.statesW || got.StatesLeading != tc.statesLd {
			t.Errorf("candidate %d: got %+v, want votes %d won %d leading %d states %d/%d",
				tc.c, got, tc.votes, tc.won, tc.leading, tc.statesW, tc.statesLd)
		}
		if want := 100 * float64(tc.votes) / 147; got.Share != want {
			t.Errorf("candidate %d: got share %v, want %v", tc.c, got.Share, want)
		}
	}
	if r.Winner != NoCandidate || r.WinnerName != "" {
		t.Errorf("got winner %d %q, want none", r.Winner, r.WinnerName)
	}
	if got := r.States[dc]; got.Status != NotContested || got.Counted != 7 || got.Leader != NoCandidate {
		t.Errorf("DC: got %+v", got)
	}
}

func TestWinner(t *testing.T) {
	// Harris carries states worth 281; leaving one uncalled takes her to
	// exactly 270 or one short of it.
	codes := []string{"CA", "TX", "FL", "NY", "PA", "IL", "OH", "GA", "NC", "MA", "KY", "AZ", "WA"}
	var tally vote.Tally
	var expected [vote.NumStates]int64
	ev := 0
	for _, code := range codes {
		s := stateByCode(t, code)
		expected[s] = 10
		tally[1][s][0] = 10
		ev += ElectoralVotes(s)
	}
	if ev != 281 {
		t.Fatalf("test setup: %d electoral votes", ev)
	}
	for _, tc := range []struct {
		name string
		drop string // a state left uncalled: only leading
		won  int
		want int
	}{
		{"281 wins", "", 281, 1},
		{"270 wins", "AZ", 270, 1},
		{"269 does not", "WA", 269, NoCandidate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := expected
			if tc.drop != "" {
				exp[stateByCode(t, tc.drop)] = 1000
			}
			r := Compute(&tally, exp)
			h := r.Candidates[1]
			if r.Winner != tc.want || h.ElectoralVotesWon != tc.won {
				t.Errorf("got winner %d with %d won, want %d with %d", r.Winner, h.ElectoralVotesWon, tc.want, tc.won)
			}
			if got := h.ElectoralVotesWon + h.ElectoralVotesLeading; got != 281 {
				t.Errorf("got %d won and leading, want 281", got)
			}
		})
	}
}

// TestWholeElection counts a generated election to the end: every state is
// called, the electoral votes add up and the popular vote is the seed's.
func TestWholeElection(t *testing.T) {
	for _, includeDC := range []bool{false, true} {
		cfg := votegen.Config{Seed: 7, Scale: 0.0005, IncludeDC: includeDC}
		expected, err := votegen.Quotas(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tally, err := votegen.TrueTotals(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := Compute(&tally, expected)
		wantStake := 535
		if includeDC {
			wantStake = 538
		}
		if r.ElectoralVotesAtStake != wantStake {
			t.Errorf("DC %v: got %d at stake, want %d", includeDC, r.ElectoralVotesAtStake, wantStake)
		}
		if r.PercentReporting != 100 || r.Counted != tally.Total() {
			t.Errorf("DC %v: got %v%% reporting, %d counted, want 100 and %d", includeDC, r.PercentReporting, r.Counted, tally.Total())
		}
		var won, tied int
		for _, s := range r.States {
			switch s.Status {
			case Called:
			case Tied:
				tied += s.ElectoralVotes
			case NotContested:
				if includeDC || s.Code != "DC" {
					t.Errorf("DC %v: %s not contested", includeDC, s.Code)
				}
			default:
				t.Errorf("DC %v: %s is %q with all votes counted", includeDC, s.Code, s.Status)
			}
		}
		for _, c := range r.Candidates {
			won += c.ElectoralVotesWon
			if c.ElectoralVotesLeading != 0 {
				t.Errorf("DC %v: %s leads %d uncalled", includeDC, c.Name, c.ElectoralVotesLeading)
			}
		}
		if won+tied != wantStake || won != r.ElectoralVotesCalled {
			t.Errorf("DC %v: got %d won + %d tied (%d called), want %d", includeDC, won, tied, r.ElectoralVotesCalled, wantStake)
		}
	}
}

func TestJSON(t *testing.T) {
	var tally vote.Tally
	tally[0][0][0] = 3
	var expected [vote.NumStates]int64
	expected[0] = 10
	r := Compute(&tally, expected)
	r.Offsets = map[int]int64{0: 42, 3: 7}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"as_of", "offsets", "counted", "expected", "percent_reporting", "over_expected", "electoral_votes_to_win", "winner", "candidates", "states"} {
		if _, ok := m[key]; !ok {
			t.Errorf("no %q in %s", key, b)
		}
	}
	st := m["states"].([]any)
	if len(st) != vote.NumStates {
		t.Fatalf("got %d states, want %d", len(st), vote.NumStates)
	}
	al := st[0].(map[string]any)
	if al["code"] != "AL" || al["name"] != "Alabama" || al["status"] != "leading" || al["leader_name"] != "Donald J. Trump" {
		t.Errorf("got Alabama %v", al)
	}
	if c := m["candidates"].([]any)[5].(map[string]any); c["name"] != "Claudia De la Cruz" {
		t.Errorf("got candidate 5 %v", c)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.States != r.States || back.Candidates != r.Candidates || back.Offsets[0] != 42 {
		t.Errorf("round trip lost data")
	}
}

func TestSeedTable(t *testing.T) {
	// The seed's micro-batch 0, in the seed's candidate order.
	votes := []int64{12029, 9959, 8025, 5983, 3970, 1976}
	var r Results
	for c := range r.Candidates {
		r.Candidates[c] = CandidateResult{ID: c, Name: vote.Candidates()[c].Name, Votes: votes[c]}
	}
	want := `+------------------+-----------+
|         candidate|total_votes|
+------------------+-----------+
|   Donald J. Trump|      12029|
|     Kamala Harris|       9959|
|       Cornel West|       8025|
|        Jill Stein|       5983|
|      Chase Oliver|       3970|
|Claudia De la Cruz|       1976|
+------------------+-----------+
`
	if got := r.SeedTable(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTable(t *testing.T) {
	cfg := votegen.Config{Seed: 1, Scale: 0.0005}
	expected, _ := votegen.Quotas(cfg)
	tally, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := Compute(&tally, expected)
	got := r.Table()
	for _, want := range []string{"|         candidate|total_votes|share|ev_won|ev_leading|", "(100.00% reporting)", "winner: Donald J. Trump"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	var empty Results
	empty.Winner = NoCandidate
	empty.ElectoralVotesToWin = ElectoralVotesToWin
	if got := empty.Table(); !strings.Contains(got, "no winner yet (270 to win)") {
		t.Errorf("got\n%s", got)
	}
}

func stateByCode(t *testing.T, code string) vote.State {
	t.Helper()
	for s, info := range vote.States() {
		if info.Code == code {
			return vote.State(s)
		}
	}
	t.Fatalf("no state %q", code)
	return 0
}

// TestWarning checks the count is flagged when it cannot be one election as
// configured: votes over a state's expected ones, votes in a state not
// contested, or several producers; and not flagged otherwise.
func TestWarning(t *testing.T) {
	var expected [vote.NumStates]int64
	expected[0], expected[1] = 10, 10 // state 2 and on: not contested
	tally := func(counts ...int64) *vote.Tally {
		var tl vote.Tally
		for s, n := range counts {
			tl[0][s][0] = n
		}
		return &tl
	}
	for _, tc := range []struct {
		name      string
		tally     *vote.Tally
		producers []string
		wantOver  int64
		want      []string // in Warning; none: no warning
	}{
		{"one election, done", tally(10, 10), []string{"a"}, 0, nil},
		{"one election, counting", tally(4, 0), []string{"a"}, 0, nil},
		{"over a state's expected", tally(12, 10), []string{"a"}, 2, []string{"2 more votes counted than expected", "SCALE and INCLUDE_DC", "make clean"}},
		{"votes where none expected", tally(10, 10, 3), []string{"a"}, 3, []string{"3 more votes"}},
		{"two elections", tally(20, 15), []string{"seed=1", "seed=2"}, 15,
			[]string{"holds 2 elections", "15 votes more than expected", "seed=1; seed=2", "make clean"}},
		{"two elections, under expected", tally(3, 0), []string{"seed=1", "seed=2"}, 0, []string{"holds 2 elections, counted together: seed=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Compute(tc.tally, expected)
			r.SetProducers(tc.producers)
			if r.OverExpected != tc.wantOver {
				t.Errorf("over expected: got %d, want %d", r.OverExpected, tc.wantOver)
			}
			if len(tc.want) == 0 && r.Warning != "" {
				t.Errorf("warning %q, want none", r.Warning)
			}
			if len(tc.want) > 0 && r.Warning == "" {
				t.Errorf("no warning, want one saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Warning, w) {
					t.Errorf("warning %q does not say %q", r.Warning, w)
				}
			}
		})
	}
}

// TestSetNight: at 8 p.m. ET the polls have closed in the 26 contested
// places (DC included) that close by then; without a night the JSON has no
// "night" and no poll times.
func TestSetNight(t *testing.T) {
	cfg := votegen.Config{Scale: 0.005, IncludeDC: true, Election: votegen.Election2024}
	expected, err := votegen.Quotas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var tally vote.Tally
	r := Compute(&tally, expected)
	if b, _ := json.Marshal(&r); strings.Contains(string(b), `"night"`) || strings.Contains(string(b), "polls_close") {
		t.Errorf("results without a night show one: %.200s", b)
	}
	var closes [vote.NumStates]time.Time
	for s := range closes {
		closes[s] = votegen.PollClose(vote.State(s))
	}
	start, end := votegen.Night()
	r.SetNight(time.Time{}, start, end, &closes)
	if r.Night.PollsClosed != 0 || r.Night.States != vote.NumStates {
		t.Errorf("before any vote: %d of %d closed, want 0 of %d", r.Night.PollsClosed, r.Night.States, vote.NumStates)
	}
	eight := time.Date(2024, 11, 6, 1, 0, 0, 0, time.UTC) // 8 p.m. EST
	r.SetNight(eight, start, end, &closes)
	if r.Night.PollsClosed != 26 {
		t.Errorf("at 8 p.m.: polls closed in %d, want 26", r.Night.PollsClosed)
	}
	for _, st := range r.States {
		if want := st.PollsClose.Compare(eight) <= 0; st.PollsClosed != want || st.PollsClose.IsZero() {
			t.Errorf("%s: polls close %s, closed %v at 8 p.m.", st.Code, st.PollsClose, st.PollsClosed)
		}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil || back.Night != r.Night || back.States != r.States {
		t.Errorf("night lost in JSON (%v): %+v", err, back.Night)
	}
}

// TestWithholdCalls: with every race called, withholding calls leaves each
// leader leading, with the same electoral votes as leading ones, no winner,
// and a warning with the reason, in the JSON too.
func TestWithholdCalls(t *testing.T) {
	var expected [vote.NumStates]int64
	var tally vote.Tally
	for s := range expected {
		expected[s] = 10
		tally[s%2][s][0] = 10 // every state called, alternately
	}
	r := Compute(&tally, expected)
	r.SetProducers([]string{"a"})
	if r.ElectoralVotesCalled != TotalElectoralVotes || r.Winner == NoCandidate {
		t.Fatalf("before: %d called, winner %d; want all %d called and a winner", r.ElectoralVotesCalled, r.Winner, TotalElectoralVotes)
	}
	before := r
	const reason = "No race is called: the counter's SCALE is not the producer's."
	r.WithholdCalls(reason)
	if r.ElectoralVotesCalled != 0 || r.Winner != NoCandidate || r.WinnerName != "" || r.CallsWithheld != reason || r.Warning != reason {
		t.Errorf("after: %d called, winner %d %q, withheld %q, warning %q; want 0, none, and the reason", r.ElectoralVotesCalled, r.Winner, r.WinnerName, r.CallsWithheld, r.Warning)
	}
	for s, st := range r.States {
		if st.Status != Leading || st.Leader != before.States[s].Leader {
			t.Errorf("%s: %s led by %d, want leading, led by %d", st.Code, st.Status, st.Leader, before.States[s].Leader)
		}
	}
	for c, cr := range r.Candidates {
		b := before.Candidates[c]
		if cr.ElectoralVotesWon != 0 || cr.ElectoralVotesLeading != b.ElectoralVotesWon || cr.StatesWon != 0 || cr.StatesLeading != b.StatesWon {
			t.Errorf("%s: won %d (%d states), leading %d (%d states); want 0 won, %d leading (%d states)", cr.Name,
				cr.ElectoralVotesWon, cr.StatesWon, cr.ElectoralVotesLeading, cr.StatesLeading, b.ElectoralVotesWon, b.StatesWon)
		}
	}
	r.SetProducers([]string{"a", "b"})
	if !strings.HasPrefix(r.Warning, reason+" This topic holds 2 elections") {
		t.Errorf("with two producers the warning is %q, want the reason then the two elections", r.Warning)
	}
	if b, _ := json.Marshal(&r); !strings.Contains(string(b), `"calls_withheld":"No race is called`) {
		t.Errorf("JSON without calls_withheld: %.300s", b)
	}
}
