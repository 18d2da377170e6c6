package checkpoint_test

import (
	"testing"

	"github.com/votestream/votestream/pkg/checkpoint"
)

func BenchmarkCheckpointMarshal(b *testing.B) {
	s := sampleState(b, 8)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := s.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

func BenchmarkCheckpointUnmarshal(b *testing.B) {
	data := marshal(b, sampleState(b, 8))
	var s checkpoint.State
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := s.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}
