package vote_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/votestream/votestream/pkg/vote"
)

// benchVotes are votes of every state, candidate and age group, so the
// benchmarks do not measure one branch.
func benchVotes(b *testing.B) []vote.Vote {
	b.Helper()
	r := rand.New(rand.NewPCG(21, 21))
	votes := make([]vote.Vote, 1024)
	for i := range votes {
		votes[i] = randomVote(r)
	}
	return votes
}

func benchRecords(b *testing.B) [][]byte {
	b.Helper()
	votes := benchVotes(b)
	recs := make([][]byte, len(votes))
	for i := range votes {
		recs[i] = vote.AppendJSON(nil, &votes[i])
	}
	return recs
}

func BenchmarkAppendJSON(b *testing.B) {
	votes := benchVotes(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = vote.AppendJSON(buf[:0], &votes[i%len(votes)])
		i++
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncoderAppendJSON encodes votes that share one timestamp, as a
// producer's batch does.
func BenchmarkEncoderAppendJSON(b *testing.B) {
	votes := benchVotes(b)
	for i := range votes {
		votes[i].Time = votes[0].Time
	}
	var e vote.Encoder
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = e.AppendJSON(buf[:0], &votes[i%len(votes)])
		i++
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	recs := benchRecords(b)
	var v vote.Vote
	b.ReportAllocs()
	b.SetBytes(int64(len(recs[0])))
	i := 0
	for b.Loop() {
		if err := vote.Decode(recs[i%len(recs)], &v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDecodeEncodingJSON is the baseline Decode is measured against:
// encoding/json into the seed's six fields, without validating them.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	recs := benchRecords(b)
	var f seedFields
	b.ReportAllocs()
	b.SetBytes(int64(len(recs[0])))
	i := 0
	for b.Loop() {
		if err := json.Unmarshal(recs[i%len(recs)], &f); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkTallyAdd(b *testing.B) {
	votes := benchVotes(b)
	var t vote.Tally
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t.Add(&votes[i%len(votes)])
		i++
	}
}
