package vote_test

import (
	"encoding/json"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
)

// The encoding/json and map baselines of the stages without one in
// bench_test.go. One op is one vote: ns/op is ns/vote, allocs/op allocs/vote.

func toSeedFields(v *vote.Vote) seedFields {
	return seedFields{
		VoteID:    string(vote.AppendID(nil, &v.ID)),
		Timestamp: string(vote.AppendTimestamp(nil, v.Time)),
		State:     v.State.String(),
		Candidate: v.Candidate.String(),
		AgeGroup:  v.AgeGroup.String(),
		VoteCount: 1,
	}
}

// BenchmarkAppendJSONEncodingJSON is AppendJSON's baseline: json.Marshal of
// the seed's six fields.
func BenchmarkAppendJSONEncodingJSON(b *testing.B) {
	votes := benchVotes(b)
	fs := make([]seedFields, len(votes))
	for i := range votes {
		fs[i] = toSeedFields(&votes[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := json.Marshal(&fs[i%len(fs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTallyAddMapBaseline is TallyAdd's baseline: counting by names in
// nested maps, as a program decoding with encoding/json would.
func BenchmarkTallyAddMapBaseline(b *testing.B) {
	votes := benchVotes(b)
	fs := make([]seedFields, len(votes))
	for i := range votes {
		fs[i] = toSeedFields(&votes[i])
	}
	t := map[string]map[string]map[string]int64{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &fs[i%len(fs)]
		byState := t[f.Candidate]
		if byState == nil {
			byState = map[string]map[string]int64{}
			t[f.Candidate] = byState
		}
		byAge := byState[f.State]
		if byAge == nil {
			byAge = map[string]int64{}
			byState[f.State] = byAge
		}
		byAge[f.AgeGroup]++
		i++
	}
}
