package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// maxRequestBytes bounds one produce request's uncompressed records, well
// under Kafka's default 1 MiB message.max.bytes even if compression is off.
const maxRequestBytes = 768 << 10

// publisher writes votes to their partitions in sequence order. Vote seq
// goes to partition seq % partitions: every partition gets the same load,
// and a restarted producer knows where each vote belongs. partitions is the
// count the election started on, named in its producer id: partitions added
// to the topic later stay empty of it, or seq % partitions would send a
// vote already in one partition again to another.
type publisher struct {
	client      *kafkaio.Client
	topic       string
	partitions  int // the topic's at first, the election's once resumed
	compression kafkaio.Codec
	election    votegen.Config
	log         *slog.Logger

	id string // the producer id, set by resume
	// last[p] is the highest sequence number of this producer already in
	// partition p (-1 for none): found at start, advanced as we publish.
	last    []int64
	skipped int64 // votes found already published at start

	queues []chan *batch // each partition's writer's, from start
}

// found is the last record of the election in one partition.
type found struct {
	id  string // its producer id; empty for none
	seq int64
}

// resume reads the end of every partition to find this election's last
// record there, and so its producer id and partition count. The producer
// writes each partition in sequence order and never moves past a record
// before it is acknowledged, so every earlier sequence of that partition is
// in the log too. Records of other producers read on the way are another
// election's: it says so in one line.
func (p *publisher) resume(ctx context.Context) error {
	if p.partitions < 1 {
		return errNoPartitions
	}
	last, others, err := p.scan(ctx)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		p.log.Warn("the topic already holds another election (another SEED or SCALE): this one is appended beside it and the counter will count both; start afresh with make clean, or set another KAFKA_TOPIC",
			"producer_id", votegen.ProducerID(p.election, 0), "other_producer_ids", slices.Sorted(maps.Keys(others)))
	}
	if err := p.settle(last); err != nil {
		return err
	}
	for part, s := range p.last {
		if s >= 0 {
			// Sequences part, part+P, ... up to s are in: (s-part)/P + 1 votes.
			p.skipped += (s-int64(part))/int64(p.partitions) + 1
		}
	}
	if p.skipped > 0 {
		p.log.Info("resuming: votes of this election already in the topic are skipped", "votes", p.skipped)
	}
	return nil
}

// scan finds, in every partition of the topic, the last record of this
// election (whatever its partition count), and the other elections' ids
// read on the way.
func (p *publisher) scan(ctx context.Context) ([]found, map[string]bool, error) {
	last := make([]found, p.partitions)
	var mu sync.Mutex
	var firstErr error
	others := make(map[string]bool) // other elections' producer ids seen
	var wg sync.WaitGroup
	for part := range last {
		wg.Go(func() {
			f := found{seq: -1}
			seen := make(map[string]bool)
			err := p.client.ScanBack(ctx, p.topic, part, 4096, func(r kafkaio.Record) bool {
				prod, s, ok := kafkaio.Sequence(r.Key, r.Headers)
				if !ok || seen[string(prod)] {
					return true
				}
				if p.ours(string(prod)) {
					f = found{string(prod), s}
					return false
				}
				seen[string(prod)] = true
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			last[part] = f
			maps.Copy(others, seen)
		})
	}
	wg.Wait()
	return last, others, firstErr
}

// ours reports whether id names this election, on any partition count.
func (p *publisher) ours(id string) bool {
	c, _, err := votegen.ParseProducerID(id)
	return err == nil && c == p.election
}

// settle sets the producer id and partition count from what scan found:
// those the election started with, or the topic's for a new election. An
// id without a count (a producer before it was recorded) is kept as it is,
// on the topic's count.
func (p *publisher) settle(last []found) error {
	ids := make(map[string]bool)
	for _, f := range last {
		if f.id != "" {
			ids[f.id] = true
		}
	}
	if len(ids) > 1 {
		return fmt.Errorf("the topic holds this election under several producer ids, published over different partition counts: %v; start afresh with make clean, or set another KAFKA_TOPIC",
			slices.Sorted(maps.Keys(ids)))
	}
	p.id = votegen.ProducerID(p.election, p.partitions)
	n := p.partitions
	for id := range ids {
		p.id = id
		if _, k, _ := votegen.ParseProducerID(id); k > 0 {
			n = k
		}
	}
	if n > p.partitions {
		return fmt.Errorf("this election was started on %d partitions of %s, which now has %d: start afresh with make clean, or set another KAFKA_TOPIC", n, p.topic, p.partitions)
	}
	for part := n; part < p.partitions; part++ {
		if last[part].id != "" {
			return fmt.Errorf("this election has votes in partition %d of %s, beyond the %d it started on: start afresh with make clean, or set another KAFKA_TOPIC", part, p.topic, n)
		}
	}
	if n < p.partitions {
		p.log.Warn("the votes topic has more partitions than when this election started: it stays on its first ones, so that no vote is sent twice",
			"topic_partitions", p.partitions, "election_partitions", n)
	}
	p.partitions = n
	p.last = make([]int64, n)
	for part := range n {
		p.last[part] = last[part].seq
	}
	return nil
}

// batch is a batch of votes being published: every partition's writer
// adds what it sent and the last one closes done.
type batch struct {
	n     int
	first int64 // sequence number of votes[0]
	votes []vote.Vote
	start time.Time

	left atomic.Int32 // partitions still publishing
	mu   sync.Mutex
	sent int64 // valid once done is closed
	err  error // the first partition's error, valid once done is closed
	done chan struct{}
}

func (b *batch) add(sent int64, err error) {
	b.mu.Lock()
	b.sent += sent
	if err != nil && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	if b.left.Add(-1) == 0 {
		close(b.done)
	}
}

// start runs one writer goroutine per partition, each taking batches in
// the order they are sent, with up to depth batches queued. A writer that
// fails stops sending, so its partition never has a later vote without an
// earlier one; it reports the same error for every later batch. The
// returned func ends the writers once they are done with what was sent.
func (p *publisher) start(ctx context.Context, depth int) (stop func()) {
	p.queues = make([]chan *batch, p.partitions)
	var wg sync.WaitGroup
	for part := range p.queues {
		q := make(chan *batch, depth)
		p.queues[part] = q
		w := &partitionWriter{p: p, part: part, producer: []byte(p.id)}
		wg.Go(func() {
			var failed error
			for b := range q {
				if failed != nil {
					b.add(0, failed)
					continue
				}
				n, err := w.publish(ctx, b.first, b.votes)
				failed = err
				b.add(n, err)
			}
		})
	}
	return func() {
		for _, q := range p.queues {
			close(q)
		}
		wg.Wait()
	}
}

// send queues the votes with sequence numbers first, first+1, ... for
// every partition's writer; each writes its share in order, skipping votes
// already in the topic. The batch's done closes once every record of it is
// acknowledged by all in-sync replicas. The caller must not send more than
// start's depth batches that are not done, nor touch votes before then.
func (p *publisher) send(n int, first int64, votes []vote.Vote) *batch {
	b := &batch{n: n, first: first, votes: votes, start: time.Now(), done: make(chan struct{})}
	b.left.Store(int32(len(p.queues)))
	for _, q := range p.queues {
		q <- b
	}
	return b
}

// alreadyIn reports whether every vote of the batch was found in the topic
// at start, so publishing it sends nothing.
func (p *publisher) alreadyIn(first int64, n int) bool {
	P := int64(p.partitions)
	// Each partition's last vote of the batch is its highest sequence.
	for seq := max(first, first+int64(n)-P); seq < first+int64(n); seq++ {
		if seq > p.last[seq%P] {
			return false
		}
	}
	return true
}

// partitionWriter builds and sends one partition's produce requests. Its
// buffers are reused from request to request: once Produce returns, the
// broker has acknowledged the records and nothing refers to them any more.
type partitionWriter struct {
	p        *publisher
	part     int
	producer []byte

	enc   vote.Encoder
	buf   []byte // every record's value and key
	batch kafkaio.Batch
}

// publish sends the batch's votes of this partition, in order.
func (w *partitionWriter) publish(ctx context.Context, first int64, votes []vote.Vote) (int64, error) {
	P := int64(w.p.partitions)
	last := w.p.last[w.part]
	// The first vote of the batch that belongs to this partition.
	start := (int64(w.part) - first%P + P) % P
	var sent int64
	// The record's time is when it is published, not the vote's time: a
	// replayed night's votes carry 2024, which the broker's retention would
	// take for data long expired.
	now := time.Now()
	flush := func() error {
		if w.batch.Len() == 0 {
			return nil
		}
		if err := w.p.client.ProduceBatch(ctx, w.p.topic, w.part, w.p.compression, &w.batch); err != nil {
			return err
		}
		sent += int64(w.batch.Len())
		w.batch.Reset()
		return nil
	}
	w.batch.Grow(int((int64(len(votes)) - start + P - 1) / P))
	for i := start; i < int64(len(votes)); i += P {
		seq := first + i
		if seq <= last {
			continue
		}
		if w.batch.Size() >= maxRequestBytes {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		v := &votes[i]
		w.buf = w.enc.AppendJSON(w.buf[:0], v) // the batch copies it
		w.batch.Add(now, w.buf, w.producer, seq)
	}
	if err := flush(); err != nil {
		return sent, err
	}
	return sent, nil
}
