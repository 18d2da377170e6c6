package votegen_test

import (
	"testing"

	"github.com/votestream/votestream/pkg/votegen"
)

// TestProducerIDRoundTrip reads back what ProducerID writes, and refuses
// ids it did not make.
func TestProducerIDRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		c          votegen.Config
		partitions int
		id         string
	}{
		{votegen.Config{Seed: 1, Scale: 0.005, Election: votegen.ElectionSeed}, 0, "votestream:seed=1,scale=0.005"},
		{votegen.Config{Seed: 7, Scale: 1e-05, IncludeDC: true, Election: votegen.ElectionSeed}, 4, "votestream:seed=7,scale=1e-05,dc,partitions=4"},
		{votegen.Config{Seed: 3, Scale: 0.01, IncludeDC: true, Election: votegen.Election2024}, 12, "votestream:seed=3,scale=0.01,dc,election=2024,partitions=12"},
	} {
		if got := votegen.ProducerID(tc.c, tc.partitions); got != tc.id {
			t.Errorf("ProducerID(%+v, %d) = %q, want %q", tc.c, tc.partitions, got, tc.id)
		}
		c, p, err := votegen.ParseProducerID(tc.id)
		if err != nil || c != tc.c || p != tc.partitions {
			t.Errorf("ParseProducerID(%q) = %+v, %d, %v; want %+v, %d", tc.id, c, p, err, tc.c, tc.partitions)
		}
	}
	for _, id := range []string{"", "other:seed=1,scale=0.1", "votestream:seed=1", "votestream:scale=0.1",
		"votestream:seed=1,scale=7", "votestream:seed=1,scale=0.1,partitions=0", "votestream:seed=1,scale=0.1,election=1999",
		"votestream:seed=1,scale=0.1,color=red", "votestream:seed=x,scale=0.1"} {
		if c, p, err := votegen.ParseProducerID(id); err == nil {
			t.Errorf("ParseProducerID(%q) = %+v, %d; want an error", id, c, p)
		}
	}
}
