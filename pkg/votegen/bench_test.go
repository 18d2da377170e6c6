package votegen_test

import (
	"testing"

	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

func BenchmarkGenerate(b *testing.B) {
	benchGenerate(b, votegen.Config{Seed: 1, Scale: 1}) // 229 M votes: never runs out
}

// BenchmarkGenerate2024 is one vote of 2024's night: a draw from its
// state's remaining votes and a step of the heap of states by time.
func BenchmarkGenerate2024(b *testing.B) {
	benchGenerate(b, votegen.Config{Seed: 1, Scale: 1, IncludeDC: true, Election: votegen.Election2024})
}

func benchGenerate(b *testing.B, cfg votegen.Config) {
	g := mustNew(b, cfg)
	var v vote.Vote
	b.ReportAllocs()
	for b.Loop() {
		if !g.Next(&v) {
			g = mustNew(b, cfg)
		}
	}
}
