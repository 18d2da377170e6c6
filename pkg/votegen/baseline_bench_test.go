package votegen_test

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/votestream/votestream/pkg/vote"
)

// BenchmarkGenerateNaiveBaseline is Generate's baseline: a vote drawn as the
// seed does with faker, a UUID from crypto/rand (uuid.New) and picks from
// math/rand. One op is one vote.
func BenchmarkGenerateNaiveBaseline(b *testing.B) {
	var weighted []vote.Candidate
	for i, c := range vote.Candidates() {
		for range c.Weight {
			weighted = append(weighted, vote.Candidate(i))
		}
	}
	var v vote.Vote
	b.ReportAllocs()
	for b.Loop() {
		v.ID = uuid.New()
		v.State = vote.State(rand.IntN(vote.NumStates - 1))
		v.Candidate = weighted[rand.IntN(len(weighted))]
		v.AgeGroup = vote.AgeGroup(rand.IntN(vote.NumAgeGroups))
	}
}
