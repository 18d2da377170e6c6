package main

import (
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// applyRecords builds n records as the producer writes them.
func applyRecords(tb testing.TB, n int) []kafkaio.FetchedRecord {
	tb.Helper()
	g, err := votegen.New(votegen.Config{Seed: 7, Scale: vote.SeedScale})
	if err != nil {
		tb.Fatal(err)
	}
	recs := make([]kafkaio.FetchedRecord, n)
	now := time.Now()
	for i := range recs {
		var v vote.Vote
		g.Next(&v)
		v.Time = now.UnixMicro()
		recs[i] = kafkaio.FetchedRecord{
			Offset: int64(i), Time: now, Value: vote.AppendJSON(nil, &v),
			Key: kafkaio.AppendSeqKey(nil, []byte("votestream:seed=7,scale=0.005"), int64(i)),
		}
	}
	return recs
}

// The counter's per-vote path (decode, dedupe, tally, latency stamp) must
// not allocate.
func TestApplyRecordDoesNotAllocate(t *testing.T) {
	recs := applyRecords(t, 1000)
	p := &partition{}
	i := 0
	allocs := testing.AllocsPerRun(len(recs)-1, func() {
		p.applyRecord("votes", &recs[i])
		i++
	})
	if allocs != 0 {
		t.Errorf("applyRecord: got %v allocs per vote, want 0", allocs)
	}
	if got := p.state.Votes(); got != int64(len(recs)) {
		t.Errorf("counted %d votes, want %d", got, len(recs))
	}
}

// BenchmarkApply is one vote per op through the counter's per-record path.
func BenchmarkApply(b *testing.B) {
	recs := applyRecords(b, 4096)
	p := &partition{}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%len(recs) == 0 {
			p.state.Producers = p.state.Producers[:0] // replay the same sequences
			p.stamps = p.stamps[:0]
		}
		p.applyRecord("votes", &recs[i%len(recs)])
	}
}
