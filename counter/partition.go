package main

import (
	"strconv"
	"sync"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// The dead letters a partition holds between checkpoints (or after a
// dead-letter write failed) are bounded in count and in bytes, so neither
// a flood of garbage nor a long outage of the dead-letter topic can
// exhaust memory. Past the bytes a letter is kept reduced to its
// coordinates and reason; past either bound it is dropped and counted as
// lost. The rejected records are counted by reason whatever happens.
const (
	maxPendingDeadLetters     = 10000
	maxPendingDeadLetterBytes = 4 << 20
)

// maxPendingStamps bounds the timestamp runs a partition keeps for the
// latency histogram between checkpoints; past it runs are merged into the
// last one, which only makes the histogram coarser.
const maxPendingStamps = 4096

// partition is one owned partition's live counting state. Its reader
// goroutine applies each fetch under mu; the micro-batch loop snapshots it.
type partition struct {
	id int

	mu    sync.Mutex
	state checkpoint.State // covers offsets [0, state.Offset)
	dead  deadQueue        // rejected since the last checkpoint, for the DLQ
	// run is the run of duplicates being read, written as one dead letter.
	run dupRun
	// seen counts the records rejected since the last snapshot by reason,
	// for the micro-batch's log line.
	seen [vote.NumReasons]int64
	hwm  int64 // the partition's high watermark, last seen
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
	var (
		producer []byte
		seq      int64
	)
	if reason == vote.ReasonNone {
		// A record without the producer's sequence (its key, or an earlier
		// producer's headers) is not deduplicated.
		producer, seq, _ = kafkaio.Sequence(m.Key, m.Headers)
		reason = p.state.Count(&v, producer, seq)
	} else {
		p.state.Reject(reason)
	}
	if reason == vote.ReasonNone {
		p.stamp(m.Time.UnixMilli())
		return
	}
	p.seen[reason]++
	p.rejects = append(p.rejects, rejection{m.Offset, reason})
	if reason == vote.ReasonDuplicate {
		// A retried run is expected after a leader failure: one letter
		// says where it is, not a copy per record.
		if !p.run.extend(m.Offset, producer, seq) {
			p.closeRun(topic)
			p.run.start(m.Offset, producer, seq)
		}
		return
	}
	p.closeRun(topic)
	p.dead.add(deadLetter(topic, p.id, m, reason))
}

// closeRun queues the open run of duplicates, if any, as its dead letter.
func (p *partition) closeRun(topic string) {
	if p.run.n > 0 {
		p.dead.add(p.run.letter(topic, p.id))
		p.run = dupRun{}
	}
}

func (p *partition) stamp(ms int64) {
	if n := len(p.stamps); n > 0 && (p.stamps[n-1].ms == ms || n >= maxPendingStamps) {
		p.stamps[n-1].n++
		return
	}
	p.stamps = append(p.stamps, stampRun{ms, 1})
}

// Headers of every dead letter: why and where from.
const (
	headerReason          = "votestream-reason"
	headerSourceTopic     = "votestream-source-topic"
	headerSourcePartition = "votestream-source-partition"
	headerSourceOffset    = "votestream-source-offset"
	// headerReduced says a letter holds only its coordinates and reason,
	// and why: the record could not be written whole.
	headerReduced = "votestream-reduced"
)

// deadLetter copies a rejected record for the dead-letter topic, with
// headers saying where it came from and why it was rejected.
func deadLetter(topic string, partition int, m *kafkaio.FetchedRecord, r vote.Reason) kafkaio.Message {
	hs := make([]kafkaio.Header, 0, len(m.Headers)+4)
	for _, h := range m.Headers {
		hs = append(hs, kafkaio.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
	}
	hs = append(hs, coordinates(topic, partition, m.Offset, r.String())...)
	value := m.Value
	if len(value) > vote.MaxRecordSize {
		value = value[:vote.MaxRecordSize] // keep the DLQ small: the head says enough
	}
	return kafkaio.Message{
		Partition: partition,
		Offset:    m.Offset,
		Key:       append([]byte(nil), m.Key...),
		Value:     append([]byte(nil), value...),
		Headers:   hs,
	}
}

// coordinates are the headers that say where a dead letter's record is and
// why it was rejected.
func coordinates(topic string, partition int, offset int64, reason string) []kafkaio.Header {
	return []kafkaio.Header{
		{Key: headerReason, Value: []byte(reason)},
		{Key: headerSourceTopic, Value: []byte(topic)},
		{Key: headerSourcePartition, Value: itoa(int64(partition))},
		{Key: headerSourceOffset, Value: itoa(offset)},
	}
}

// reduce is a dead letter cut down to its coordinates and reason, saying
// why: what is written when the whole letter cannot be.
func reduce(m kafkaio.Message, why string) kafkaio.Message {
	if reducedWhy(m) != "" {
		return m
	}
	var hs []kafkaio.Header
	for _, h := range m.Headers {
		switch h.Key {
		case headerReason, headerSourceTopic, headerSourcePartition, headerSourceOffset, headerRunLastOffset:
			hs = append(hs, h)
		}
	}
	hs = append(hs, kafkaio.Header{Key: headerReduced, Value: []byte(why)})
	return kafkaio.Message{Partition: m.Partition, Offset: m.Offset, Headers: hs, Time: m.Time}
}

// reducedWhy is why m was reduced, or "" if it is whole.
func reducedWhy(m kafkaio.Message) string {
	for _, h := range m.Headers {
		if h.Key == headerReduced {
			return string(h.Value)
		}
	}
	return ""
}

// letterSize is what a dead letter weighs in memory and, near enough, in a
// request before compression.
func letterSize(m *kafkaio.Message) int {
	n := len(m.Key) + len(m.Value) + 24
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	return n
}

func itoa(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// deadQueue is a partition's pending dead letters, within the bounds above.
type deadQueue struct {
	msgs  []kafkaio.Message
	bytes int
	// lost counts the letters dropped at the bounds since the last take.
	lost int64
}

// add queues m, reduced if the bytes are short, or drops it.
func (q *deadQueue) add(m kafkaio.Message) {
	if len(q.msgs) >= maxPendingDeadLetters {
		q.lost++
		return
	}
	n := letterSize(&m)
	if q.bytes+n > maxPendingDeadLetterBytes {
		m = reduce(m, "pending dead letters over their memory bound")
		n = letterSize(&m)
		if q.bytes+n > maxPendingDeadLetterBytes {
			q.lost++
			return
		}
	}
	q.msgs = append(q.msgs, m)
	q.bytes += n
}

// take empties the queue, returning its letters and how many were lost.
func (q *deadQueue) take() ([]kafkaio.Message, int64) {
	msgs, lost := q.msgs, q.lost
	*q = deadQueue{}
	return msgs, lost
}

// snapshot is what a micro-batch takes from a partition.
type snapshot struct {
	state  *checkpoint.State // nil when nothing changed since the last checkpoint
	dead   []kafkaio.Message
	lost   int64 // dead letters dropped at the pending bounds
	stamps []stampRun
	seen   [vote.NumReasons]int64
	hwm    int64
}

// snapshot takes the pending dead letters and rejection counts, and a copy
// of the state with its timestamps; the state is nil when nothing changed
// since the last checkpoint.
func (p *partition) snapshot(topic string) snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := snapshot{hwm: p.hwm, seen: p.seen}
	p.seen = [vote.NumReasons]int64{}
	// A run of duplicates is written with the micro-batch that read it.
	p.closeRun(topic)
	// Letters put back after a failed write go out even when nothing
	// new was read.
	s.dead, s.lost = p.dead.take()
	if p.state.Offset == p.saved {
		return s
	}
	s.stamps, p.stamps = p.stamps, nil
	s.state = p.state.Clone()
	return s
}

// requeue puts back timestamps whose checkpoint failed, ahead of newer
// ones.
func (p *partition) requeue(stamps []stampRun) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stamps = append(stamps, p.stamps...)
}

// requeueDead puts back dead letters whose write failed for now, ahead of
// newer ones, within the pending bounds.
func (p *partition) requeueDead(dead []kafkaio.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	newer, lost := p.dead.take()
	p.dead.lost = lost
	for _, m := range dead {
		p.dead.add(m)
	}
	for _, m := range newer {
		p.dead.add(m)
	}
}
