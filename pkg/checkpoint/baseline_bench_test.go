package checkpoint_test

import (
	"encoding/json"
	"testing"
)

// votesPerCheckpoint is the counter's default BATCH_MAX_RECORDS: at full
// speed a checkpoint's cost is shared by that many votes.
const votesPerCheckpoint = 50000

// BenchmarkCheckpointMarshalPerVote is BenchmarkCheckpointMarshal with its
// cost per vote of a full micro-batch.
func BenchmarkCheckpointMarshalPerVote(b *testing.B) {
	s := sampleState(b, 8)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/votesPerCheckpoint, "ns/vote")
}

// BenchmarkCheckpointMarshalEncodingJSON is the baseline: the same state
// through encoding/json.
func BenchmarkCheckpointMarshalEncodingJSON(b *testing.B) {
	s := sampleState(b, 8)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		out, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/votesPerCheckpoint, "ns/vote")
}
