package main

import (
	"strconv"
	"sync"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// maxPendingDeadLetters bounds the rejected records a partition holds for
// the dead-letter topic between checkpoints, so a flood of garbage cannot
// exhaust memory; past it rejected records are still counted by reason, but
// not copied.
const maxPendingDeadLetters = 10000

// maxPendingStamps bounds the timestamp runs a partition keeps for the
// latency histogram between checkpoints; past it runs are merged into the
// last one, which only makes the histogram coarser.
const maxPendingStamps = 4096

// partition is one owned partition's live counting state. Its reader
// goroutine applies each fetch under mu; the micro-batch loop snapshots it.
type partition struct {
	id int

	mu    sync.Mutex
	state checkpoint.State  // covers offsets [0, state.Offset)
	dead  []kafkaio.Message // rejected since the last checkpoint, for the DLQ
	hwm   int64             // the partition's high watermark, last seen
	// stamps are the record timestamps counted since the last checkpoint,
	// run-length encoded by millisecond: the latency histogram's input.
	stamps []stampRun
	// saved is the offset of the last checkpoint written.
	saved int64

	// dec decodes under mu; it remembers the last timestamp, which a
	// producer's batch shares.
	dec vote.Decoder

	// rejects is the reader goroutine's own scratch: the records of the
	// last fetch that were rejected, to report outside the lock.
	rejects []rejection
}

// stampRun is n consecutive counted records with the same timestamp (Unix
// milliseconds).
type stampRun struct{ ms, n int64 }

type rejection struct {
	offset int64
	reason vote.Reason
}

// applyFetch counts one fetch's records, in offset order, under one lock,
// and moves the partition past them. It returns how many records it read
// and those it rejected; the slice is reused by the next call. The
// per-record path does not allocate for valid votes.
func (p *partition) applyFetch(topic string, f *kafkaio.Fetch) (int64, []rejection) {
	p.rejects = p.rejects[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for m := f.Next(); m != nil; m = f.Next() {
		n++
		p.applyRecord(topic, m)
	}
	if f.Last >= 0 {
		p.state.Offset = f.Last + 1
	}
	p.hwm = max(p.hwm, f.HighWatermark)
	return n, p.rejects
}

// applyRecord counts one record; p.mu is held.
func (p *partition) applyRecord(topic string, m *kafkaio.FetchedRecord) {
	var v vote.Vote
	reason := vote.ReasonNone
	if err := p.dec.Decode(m.Value, &v); err != nil {
		reason = err.(*vote.DecodeError).Reason
	}
	if reason == vote.ReasonNone {
		// A record without the producer's sequence (its key, or an earlier
		// producer's headers) is not deduplicated.
		producer, seq, _ := kafkaio.Sequence(m.Key, m.Headers)
		reason = p.state.Count(&v, producer, seq)
	} else {
		p.state.Reject(reason)
	}
	if reason != vote.ReasonNone {
		if len(p.dead) < maxPendingDeadLetters {
			p.dead = append(p.dead, deadLetter(topic, p.id, m, reason))
		}
		p.rejects = append(p.rejects, rejection{m.Offset, reason})
		return
	}
	p.stamp(m.Time.UnixMilli())
}

func (p *partition) stamp(ms int64) {
	if n := len(p.stamps); n > 0 && (p.stamps[n-1].ms == ms || n >= maxPendingStamps) {
		p.stamps[n-1].n++
		return
	}
	p.stamps = append(p.stamps, stampRun{ms, 1})
}

// deadLetter copies a rejected record for the dead-letter topic, with
// headers saying where it came from and why it was rejected.
func deadLetter(topic string, partition int, m *kafkaio.FetchedRecord, r vote.Reason) kafkaio.Message {
	hs := make([]kafkaio.Header, 0, len(m.Headers)+4)
	for _, h := range m.Headers {
		hs = append(hs, kafkaio.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
	}
	hs = append(hs,
		kafkaio.Header{Key: "votestream-reason", Value: []byte(r.String())},
		kafkaio.Header{Key: "votestream-source-topic", Value: []byte(topic)},
		kafkaio.Header{Key: "votestream-source-partition", Value: itoa(int64(partition))},
		kafkaio.Header{Key: "votestream-source-offset", Value: itoa(m.Offset)},
	)
	value := m.Value
	if len(value) > vote.MaxRecordSize {
		value = value[:vote.MaxRecordSize] // keep the DLQ small: the head says enough
	}
	return kafkaio.Message{
		Partition: partition,
		Key:       append([]byte(nil), m.Key...),
		Value:     append([]byte(nil), value...),
		Headers:   hs,
	}
}

func itoa(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// snapshot returns a copy of the state and takes the pending dead letters
// and timestamps, or reports false when nothing changed since the last
// checkpoint.
func (p *partition) snapshot() (*checkpoint.State, []kafkaio.Message, []stampRun, int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Offset == p.saved {
		return nil, nil, nil, p.hwm, false
	}
	dead, stamps := p.dead, p.stamps
	p.dead, p.stamps = nil, nil
	return p.state.Clone(), dead, stamps, p.hwm, true
}

// requeue puts back dead letters and timestamps whose checkpoint failed,
// ahead of newer ones.
func (p *partition) requeue(dead []kafkaio.Message, stamps []stampRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = append(dead, p.dead...)
	p.stamps = append(stamps, p.stamps...)
}
