package main

import (
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// maxPendingDeadLetters bounds the rejected records a partition holds for
// the dead-letter topic between checkpoints, so a flood of garbage cannot
// exhaust memory; past it rejected records are still counted by reason, but
// not copied.
const maxPendingDeadLetters = 10000

// partition is one owned partition's live counting state. Its reader
// goroutine applies records under mu; the micro-batch loop snapshots it.
type partition struct {
	id int

	mu    sync.Mutex
	state checkpoint.State // covers offsets [0, state.Offset)
	dead  []kafka.Message  // rejected since the last checkpoint, for the DLQ
	hwm   int64            // the partition's high watermark, last seen
	// saved is the offset of the last checkpoint written.
	saved int64
}

// apply counts one record and moves the partition past it. It returns why
// the record was rejected, or vote.ReasonNone.
func (p *partition) apply(m *kafka.Message) vote.Reason {
	var v vote.Vote
	reason := vote.ReasonNone
	if err := vote.Decode(m.Value, &v); err != nil {
		reason = err.(*vote.DecodeError).Reason
	}
	producer, seq := producerSeq(m.Headers)

	p.mu.Lock()
	defer p.mu.Unlock()
	if reason == vote.ReasonNone {
		reason = p.state.Count(&v, producer, seq)
	} else {
		p.state.Reject(reason)
	}
	if reason != vote.ReasonNone && len(p.dead) < maxPendingDeadLetters {
		p.dead = append(p.dead, deadLetter(m, reason))
	}
	p.state.Offset = m.Offset + 1
	p.hwm = m.HighWaterMark
	return reason
}

// producerSeq reads votestream's producer headers without allocating. A
// record without them, or with a malformed sequence, is not deduplicated.
func producerSeq(hs []kafka.Header) (producer []byte, seq int64) {
	var seqRaw []byte
	for i := range hs {
		switch hs[i].Key {
		case kafkaio.HeaderProducer:
			producer = hs[i].Value
		case kafkaio.HeaderSeq:
			seqRaw = hs[i].Value
		}
	}
	if len(producer) == 0 || len(seqRaw) == 0 || len(seqRaw) > 18 {
		return nil, 0
	}
	for _, c := range seqRaw {
		if c < '0' || c > '9' {
			return nil, 0
		}
		seq = seq*10 + int64(c-'0')
	}
	return producer, seq
}

// deadLetter copies a rejected record for the dead-letter topic, with
// headers saying where it came from and why it was rejected.
func deadLetter(m *kafka.Message, r vote.Reason) kafka.Message {
	hs := make([]kafka.Header, 0, len(m.Headers)+4)
	for _, h := range m.Headers {
		hs = append(hs, kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
	}
	hs = append(hs,
		kafka.Header{Key: "votestream-reason", Value: []byte(r.String())},
		kafka.Header{Key: "votestream-source-topic", Value: []byte(m.Topic)},
		kafka.Header{Key: "votestream-source-partition", Value: itoa(int64(m.Partition))},
		kafka.Header{Key: "votestream-source-offset", Value: itoa(m.Offset)},
	)
	value := m.Value
	if len(value) > vote.MaxRecordSize {
		value = value[:vote.MaxRecordSize] // keep the DLQ small: the head says enough
	}
	return kafka.Message{
		Partition: m.Partition,
		Key:       append([]byte(nil), m.Key...),
		Value:     append([]byte(nil), value...),
		Headers:   hs,
	}
}

func itoa(n int64) []byte {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return []byte("0")
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append([]byte(nil), b[i:]...)
}

// snapshot returns a copy of the state and takes the pending dead letters,
// or reports false when nothing changed since the last checkpoint.
func (p *partition) snapshot() (*checkpoint.State, []kafka.Message, int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Offset == p.saved {
		return nil, nil, p.hwm, false
	}
	dead := p.dead
	p.dead = nil
	return p.state.Clone(), dead, p.hwm, true
}

// requeue puts back dead letters whose checkpoint failed, ahead of newer ones.
func (p *partition) requeue(dead []kafka.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = append(dead, p.dead...)
}
