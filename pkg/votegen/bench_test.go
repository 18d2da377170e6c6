package votegen_test

import (
	"testing"

	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

func BenchmarkGenerate(b *testing.B) {
	cfg := votegen.Config{Seed: 1, Scale: 1} // 229 M votes: never runs out
	g := mustNew(b, cfg)
	var v vote.Vote
	b.ReportAllocs()
	for b.Loop() {
		if !g.Next(&v) {
			g = mustNew(b, cfg)
		}
	}
}
