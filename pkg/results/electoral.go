package results

import "github.com/votestream/votestream/pkg/vote"

// The electoral college of the 2024 election (apportionment from the 2020
// census).
const (
	TotalElectoralVotes = 538
	ElectoralVotesToWin = 270
)

// electoralVotes is indexed like vote.States: the 50 states carry 535 votes
// and DC, last, 3. Maine and Nebraska split theirs by congressional district
// in real life; the seed's votes carry no district, so here every state,
// those two included, gives all its votes to its statewide winner.
var electoralVotes = [vote.NumStates]int{
	9, 3, 11, 6, 54, 10, 7, 3, 30, 16, // AL AK AZ AR CA CO CT DE FL GA
	4, 4, 19, 11, 6, 6, 8, 8, 4, 10, // HI ID IL IN IA KS KY LA ME MD
	11, 15, 10, 6, 10, 4, 5, 6, 4, 14, // MA MI MN MS MO MT NE NV NH NJ
	5, 28, 16, 3, 17, 7, 8, 19, 4, 9, // NM NY NC ND OH OK OR PA RI SC
	3, 11, 40, 6, 3, 13, 12, 4, 10, 3, // SD TN TX UT VT VA WA WV WI WY
	3, // DC
}

// ElectoralVotes is the number of electoral votes of state s in 2024.
func ElectoralVotes(s vote.State) int {
	if int(s) >= vote.NumStates {
		return 0
	}
	return electoralVotes[s]
}
