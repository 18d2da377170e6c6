package results

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SeedTable renders the national totals the way the seed's Spark job logs
// them with show(): one row per candidate, in the seed's candidate order.
//
//	+------------------+-----------+
//	|         candidate|total_votes|
//	+------------------+-----------+
//	|   Donald J. Trump|      12029|
//	...
func (r *Results) SeedTable() string {
	rows := make([][]string, len(r.Candidates))
	for i, c := range r.Candidates {
		rows[i] = []string{c.Name, strconv.FormatInt(c.Votes, 10)}
	}
	return show([]string{"candidate", "total_votes"}, rows)
}

// Table renders the national totals with the electoral college beside them,
// then a line with the count's progress and the winner if there is one.
func (r *Results) Table() string {
	rows := make([][]string, len(r.Candidates))
	for i, c := range r.Candidates {
		rows[i] = []string{
			c.Name,
			strconv.FormatInt(c.Votes, 10),
			strconv.FormatFloat(c.Share, 'f', 2, 64),
			strconv.Itoa(c.ElectoralVotesWon),
			strconv.Itoa(c.ElectoralVotesLeading),
		}
	}
	var b strings.Builder
	b.WriteString(show([]string{"candidate", "total_votes", "share", "ev_won", "ev_leading"}, rows))
	fmt.Fprintf(&b, "counted %d of %d expected (%.2f%% reporting), %d of %d electoral votes called, ",
		r.Counted, r.Expected, r.PercentReporting, r.ElectoralVotesCalled, r.ElectoralVotesAtStake)
	if r.Winner == NoCandidate {
		fmt.Fprintf(&b, "no winner yet (%d to win)\n", r.ElectoralVotesToWin)
	} else {
		fmt.Fprintf(&b, "winner: %s\n", r.WinnerName)
	}
	return b.String()
}

// show lays out a table as Spark's Dataset.show() does: columns as wide as
// their widest cell (at least 3), cells right-aligned.
func show(header []string, rows [][]string) string {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = max(3, utf8.RuneCountInString(h))
	}
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	sep := func() {
		for _, w := range width {
			b.WriteByte('+')
			b.WriteString(strings.Repeat("-", w))
		}
		b.WriteString("+\n")
	}
	line := func(cells []string) {
		for i, cell := range cells {
			b.WriteByte('|')
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)))
			b.WriteString(cell)
		}
		b.WriteString("|\n")
	}
	sep()
	line(header)
	sep()
	for _, row := range rows {
		line(row)
	}
	sep()
	return b.String()
}
