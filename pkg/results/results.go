// Package results turns a vote tally into what an election night shows: per
// state, how much of the expected vote is counted, who leads and whether the
// race can be called; nationally, the popular vote and the electoral college
// toward 270. It is pure: no Kafka, no HTTP, no clock.
package results

import (
	"fmt"
	"strings"
	"time"

	"github.com/votestream/votestream/pkg/vote"
)

// NoCandidate is the Leader of a state nobody leads and the Winner of an
// election nobody has won yet.
const NoCandidate = -1

// Status is where a state's race stands.
type Status string

// The statuses of a state's race.
const (
	// NotContested: no votes are expected there (DC when it is not
	// generated). Its electoral votes are not at stake.
	NotContested Status = "not_contested"
	// NoVotes: votes are expected but none is counted yet.
	NoVotes Status = "no_votes"
	// Tied: two or more candidates share the most votes. With nothing
	// remaining it is a final tie and stays uncalled.
	Tied Status = "tied"
	// Leading: one candidate has the most votes but the votes remaining
	// could still let another catch up.
	Leading Status = "leading"
	// Called: the leader wins even if every remaining vote went to the
	// runner-up.
	Called Status = "called"
)

// Results is the whole election as counted so far. It is a value: arrays,
// not slices, so copying it snapshots it (except Offsets, which the caller
// owns).
type Results struct {
	// Filled by the caller, not by Compute: when the tally was taken, the
	// Kafka offsets it covers (partition to next offset) and who computed it.
	AsOf    time.Time     `json:"as_of"`
	Offsets map[int]int64 `json:"offsets,omitempty"`
	Source  string        `json:"source,omitempty"`
	// AgeSeconds is how old AsOf was when the results were served; the
	// HTTP layer fills it.
	AgeSeconds float64 `json:"age_seconds,omitempty"`

	Counted          int64   `json:"counted"`           // votes counted, every state
	Expected         int64   `json:"expected"`          // votes expected in contested states
	PercentReporting float64 `json:"percent_reporting"` // counted in contested states over Expected, 0 to 100

	// Producers are the ids of the producers whose votes are counted, one
	// per election (seed and scale), sorted; the caller sets them with
	// SetProducers. OverExpected is the votes counted beyond each state's
	// expected votes, those of states not contested included. Warning says
	// in one sentence why the count cannot be one election as configured:
	// several producers, or votes over expected; empty when neither.
	Producers    []string `json:"producers,omitempty"`
	OverExpected int64    `json:"over_expected"`
	Warning      string   `json:"warning,omitempty"`
	// CallsWithheld says why no race is called, set by WithholdCalls:
	// the votes to expect are in doubt. Empty when races are called.
	CallsWithheld string `json:"calls_withheld,omitempty"`

	// ElectoralVotesAtStake sums the contested states' electoral votes: 538
	// with DC, 535 without. ElectoralVotesToWin stays 270 either way.
	ElectoralVotesAtStake int `json:"electoral_votes_at_stake"`
	ElectoralVotesToWin   int `json:"electoral_votes_to_win"`
	ElectoralVotesCalled  int `json:"electoral_votes_called"` // in called states
	// Winner is the candidate whose called electoral votes reach 270, or
	// NoCandidate.
	Winner     int    `json:"winner"`
	WinnerName string `json:"winner_name,omitempty"`

	Candidates [vote.NumCandidates]CandidateResult `json:"candidates"`
	States     [vote.NumStates]StateResult         `json:"states"`

	// Night is the clock of an election replayed along its night
	// (ELECTION=2024), set by SetNight; absent otherwise.
	Night Night `json:"night,omitzero"`
}

// Night is where an election night stands.
type Night struct {
	// Clock is the night's time as far as the count goes: the newest
	// timestamp of a vote counted; zero before any.
	Clock time.Time `json:"clock"`
	// Start and End are the first poll closing and the last report.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// PollsClosed counts the contested states whose polls have closed by
	// Clock, of States contested.
	PollsClosed int `json:"polls_closed"`
	States      int `json:"states"`
}

// CandidateResult is one candidate nationally.
type CandidateResult struct {
	ID    int     `json:"id"` // index in vote.Candidates
	Name  string  `json:"name"`
	Votes int64   `json:"votes"` // popular vote
	Share float64 `json:"share"` // percent of all votes counted, 0 to 100
	// ElectoralVotesWon come from called states; ElectoralVotesLeading
	// from states the candidate leads but that are not called yet.
	ElectoralVotesWon     int `json:"electoral_votes_won"`
	ElectoralVotesLeading int `json:"electoral_votes_leading"`
	StatesWon             int `json:"states_won"`
	StatesLeading         int `json:"states_leading"`
}

// StateResult is one state's race.
type StateResult struct {
	ID             int    `json:"id"` // index in vote.States
	Name           string `json:"name"`
	Code           string `json:"code"` // USPS code
	ElectoralVotes int    `json:"electoral_votes"`
	Status         Status `json:"status"`

	Counted  int64 `json:"counted"`
	Expected int64 `json:"expected"`
	// Remaining is Expected minus Counted, never below 0.
	Remaining int64 `json:"remaining"`
	// PercentReporting is Counted over Expected, 0 to 100; above 100 only
	// if more votes were counted than expected, which is worth seeing.
	PercentReporting float64 `json:"percent_reporting"`

	Votes [vote.NumCandidates]int64 `json:"votes"` // indexed like Candidates

	// Leader is the candidate with strictly the most votes, or NoCandidate
	// (no votes, a tie, or not contested). RunnerUp is the next one, or
	// NoCandidate.
	Leader     int    `json:"leader"`
	LeaderName string `json:"leader_name,omitempty"`
	RunnerUp   int    `json:"runner_up"`
	// Margin is the leader's votes minus the runner-up's; MarginPoints the
	// same in percentage points of the votes counted in the state.
	Margin       int64   `json:"margin"`
	MarginPoints float64 `json:"margin_points"`

	// PollsClose is when the state's last polls close, and PollsClosed
	// whether they have by the night's clock: only in an election night.
	PollsClose  time.Time `json:"polls_close,omitzero"`
	PollsClosed bool      `json:"polls_closed,omitempty"`
}

// SetNight adds the night's clock to results computed by Compute: clock is
// the newest vote's time counted (zero for none), start and end the night's
// span, closes each state's poll closing.
func (r *Results) SetNight(clock, start, end time.Time, closes *[vote.NumStates]time.Time) {
	r.Night = Night{Clock: clock, Start: start, End: end}
	for s := range r.States {
		sr := &r.States[s]
		if sr.Status == NotContested {
			continue
		}
		sr.PollsClose = closes[s]
		sr.PollsClosed = !clock.IsZero() && !clock.Before(closes[s])
		r.Night.States++
		if sr.PollsClosed {
			r.Night.PollsClosed++
		}
	}
}

// Compute builds the results from a tally and the votes expected per state
// (votegen.Quotas). A state expecting no votes is not contested: its votes,
// if any, still count in the popular vote, but it has no leader and its
// electoral votes are at stake for nobody.
func Compute(t *vote.Tally, expected [vote.NumStates]int64) Results {
	r := Results{
		ElectoralVotesToWin: ElectoralVotesToWin,
		Winner:              NoCandidate,
	}
	for c, info := range vote.Candidates() {
		r.Candidates[c] = CandidateResult{ID: c, Name: info.Name}
	}
	var contestedCounted int64
	for s, info := range vote.States() {
		sr := &r.States[s]
		*sr = StateResult{
			ID:             s,
			Name:           info.Name,
			Code:           info.Code,
			ElectoralVotes: electoralVotes[s],
			Expected:       max(expected[s], 0),
			Leader:         NoCandidate,
			RunnerUp:       NoCandidate,
		}
		for c := range sr.Votes {
			v := t.StateTotal(vote.Candidate(c), vote.State(s))
			sr.Votes[c] = v
			sr.Counted += v
			r.Candidates[c].Votes += v
		}
		r.Counted += sr.Counted
		r.OverExpected += max(sr.Counted-sr.Expected, 0)
		if sr.Expected == 0 {
			sr.Status = NotContested
			continue
		}
		r.Expected += sr.Expected
		r.ElectoralVotesAtStake += sr.ElectoralVotes
		contestedCounted += sr.Counted
		sr.Remaining = max(sr.Expected-sr.Counted, 0)
		sr.PercentReporting = percent(sr.Counted, sr.Expected)
		decide(sr)

		switch sr.Status {
		case Called:
			c := &r.Candidates[sr.Leader]
			c.ElectoralVotesWon += sr.ElectoralVotes
			c.StatesWon++
			r.ElectoralVotesCalled += sr.ElectoralVotes
		case Leading:
			c := &r.Candidates[sr.Leader]
			c.ElectoralVotesLeading += sr.ElectoralVotes
			c.StatesLeading++
		}
	}
	r.PercentReporting = percent(contestedCounted, r.Expected)
	for c := range r.Candidates {
		cr := &r.Candidates[c]
		cr.Share = percent(cr.Votes, r.Counted)
		// 2*270 > 538: at most one candidate can get there.
		if cr.ElectoralVotesWon >= ElectoralVotesToWin {
			r.Winner, r.WinnerName = c, cr.Name
		}
	}
	r.warn()
	return r
}

// SetProducers records the producer ids whose votes are counted (sorted,
// one per election) and updates Warning.
func (r *Results) SetProducers(ids []string) {
	r.Producers = ids
	r.warn()
}

// WithholdCalls calls no race, since the votes to expect are in doubt
// (why, in one sentence, is reason): every called state is shown as led,
// its electoral votes as leading, and nobody wins. Warning says so.
func (r *Results) WithholdCalls(reason string) {
	r.CallsWithheld = reason
	for s := range r.States {
		sr := &r.States[s]
		if sr.Status != Called {
			continue
		}
		sr.Status = Leading
		c := &r.Candidates[sr.Leader]
		c.ElectoralVotesWon -= sr.ElectoralVotes
		c.ElectoralVotesLeading += sr.ElectoralVotes
		c.StatesWon--
		c.StatesLeading++
	}
	r.ElectoralVotesCalled = 0
	r.Winner, r.WinnerName = NoCandidate, ""
	r.warn()
}

// warn sets Warning from CallsWithheld, Producers and OverExpected.
func (r *Results) warn() {
	r.warnCount()
	if r.CallsWithheld != "" {
		r.Warning = strings.TrimSpace(r.CallsWithheld + " " + r.Warning)
	}
}

// warnCount sets Warning from Producers and OverExpected.
func (r *Results) warnCount() {
	switch {
	case len(r.Producers) > 1:
		over := ""
		if r.OverExpected > 0 {
			over = fmt.Sprintf(" (%d votes more than expected)", r.OverExpected)
		}
		r.Warning = fmt.Sprintf("This topic holds %d elections, counted together%s: %s. Start afresh with make clean, or give each election its own KAFKA_TOPIC.",
			len(r.Producers), over, strings.Join(r.Producers, "; "))
	case r.OverExpected > 0:
		r.Warning = fmt.Sprintf("%d more votes counted than expected: set SCALE and INCLUDE_DC on the counter like the producer, or start afresh with make clean.",
			r.OverExpected)
	default:
		r.Warning = ""
	}
}

// decide sets the leader, margin and status of a contested state from its
// votes, counts and remaining votes.
func decide(sr *StateResult) {
	if sr.Counted == 0 {
		sr.Status = NoVotes
		return
	}
	// first and second are the two largest counts, equal on a tie; ties for
	// the lead go to the lower index only to name a runner-up.
	first, second := 0, NoCandidate
	for c := 1; c < len(sr.Votes); c++ {
		switch {
		case sr.Votes[c] > sr.Votes[first]:
			first, second = c, first
		case second == NoCandidate || sr.Votes[c] > sr.Votes[second]:
			second = c
		}
	}
	sr.Margin = sr.Votes[first] - sr.Votes[second]
	sr.MarginPoints = percent(sr.Margin, sr.Counted)
	if sr.Margin == 0 {
		sr.Status = Tied
		return
	}
	sr.Leader, sr.RunnerUp = first, second
	sr.LeaderName = vote.Candidates()[first].Name
	// The runner-up has the most to gain from any remaining vote: if all of
	// them went to it and it still trailed, nobody can catch the leader.
	// Reaching a tie (Remaining == Margin) is not enough to call.
	if sr.Remaining < sr.Margin {
		sr.Status = Called
	} else {
		sr.Status = Leading
	}
}

// percent is 100*n/d, or 0 when d is 0.
func percent(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return 100 * float64(n) / float64(d)
}
