package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// Headers of a run of duplicates' dead letter, besides the coordinates of
// its first record.
const (
	headerRunLastOffset = "votestream-source-last-offset"
	headerRunRecords    = "votestream-run-records"
)

// dupRun is consecutive records of one producer rejected as duplicates:
// what a produce retried after a leader failure writes again.
type dupRun struct {
	producer          string
	first, last       int64 // offsets
	firstSeq, lastSeq int64
	n                 int64
}

// extend adds the duplicate at offset if it carries on the run.
func (r *dupRun) extend(offset int64, producer []byte, seq int64) bool {
	if r.n == 0 || offset != r.last+1 || string(producer) != r.producer {
		return false
	}
	r.last, r.lastSeq = offset, seq
	r.n++
	return true
}

func (r *dupRun) start(offset int64, producer []byte, seq int64) {
	*r = dupRun{producer: string(producer), first: offset, last: offset, firstSeq: seq, lastSeq: seq, n: 1}
}

// runSummary is a run's dead letter value.
type runSummary struct {
	Reason      string `json:"reason"`
	Topic       string `json:"topic"`
	Partition   int    `json:"partition"`
	FirstOffset int64  `json:"first_offset"`
	LastOffset  int64  `json:"last_offset"`
	Records     int64  `json:"records"`
	Producer    string `json:"producer"`
	FirstSeq    int64  `json:"first_seq"`
	LastSeq     int64  `json:"last_seq"`
}

// letter is the run's one dead letter: its coordinates in the headers, a
// JSON summary as the value, the producer as the key.
func (r *dupRun) letter(topic string, partition int) kafkaio.Message {
	reason := vote.ReasonDuplicate.String()
	value, _ := json.Marshal(runSummary{reason, topic, partition, r.first, r.last, r.n, r.producer, r.firstSeq, r.lastSeq})
	hs := append(coordinates(topic, partition, r.first, reason),
		kafkaio.Header{Key: headerRunLastOffset, Value: itoa(r.last)},
		kafkaio.Header{Key: headerRunRecords, Value: itoa(r.n)})
	return kafkaio.Message{Partition: partition, Offset: r.first, Key: []byte(r.producer), Value: value, Headers: hs}
}

// deadLetterTimeout bounds a micro-batch's dead-letter writes (and half
// the time left under the lease does): counting never waits on the
// dead-letter topic longer. Letters the topic could not
// take in time wait for the next micro-batch, and the checkpoint goes on.
const deadLetterTimeout = 5 * time.Second

// deadResult is what became of a micro-batch's dead letters.
type deadResult struct {
	written, reduced, lost int64
	// retry are letters refused for now (a leader moving, a timeout):
	// they go back to their partitions for the next micro-batch.
	retry []kafkaio.Message
	// lostErr is why the last lost letter could not be written.
	lostErr error
}

func (d *deadResult) merge(o deadResult) {
	d.written += o.written
	d.reduced += o.reduced
	d.lost += o.lost
	d.retry = append(d.retry, o.retry...)
	if o.lostErr != nil {
		d.lostErr = o.lostErr
	}
}

// writeDead writes dead letters, each DLQ partition's in requests under
// the topic's size limit, compressed, within deadLetterTimeout. A request
// the broker finds too large is split; a letter that alone is too large,
// or that the broker refuses for good (a missing ACL), is written reduced
// to its coordinates and reason; one that cannot be written even so is
// lost, and counted. Nothing here fails the checkpoint.
func (s *store) writeDead(ctx context.Context, dead []kafkaio.Message) deadResult {
	var res deadResult
	if len(dead) == 0 {
		return res
	}
	// At most half of what is left of the micro-batch's time: the
	// checkpoints come after.
	d := deadLetterTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/2)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	budget := requestBudget(s.limits.get(ctx, s.dlq))
	now := time.Now()
	byPart := make(map[int][]kafkaio.Message)
	for _, m := range dead {
		m.Time = now
		p := m.Partition % s.dlqN
		byPart[p] = append(byPart[p], m)
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for p, msgs := range byPart {
		wg.Go(func() {
			var r deadResult
			for _, chunk := range chunks(msgs, budget) {
				s.writeChunk(ctx, p, chunk, &r)
			}
			mu.Lock()
			res.merge(r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// writeChunk writes one request's letters to DLQ partition p.
func (s *store) writeChunk(ctx context.Context, p int, chunk []kafkaio.Message, res *deadResult) {
	err := s.client.ProduceMessages(ctx, s.dlq, p, kafkaio.Snappy, chunk)
	switch {
	case err == nil:
		for _, m := range chunk {
			if reducedWhy(m) != "" {
				res.reduced++
			} else {
				res.written++
			}
		}
	case ctx.Err() != nil || kafkaio.Retriable(err):
		res.retry = append(res.retry, chunk...)
	case kafkaio.TooLarge(err) && len(chunk) > 1:
		// The limit may have changed since it was read; halves fit sooner.
		s.limits.forget(s.dlq)
		half := len(chunk) / 2
		s.writeChunk(ctx, p, chunk[:half], res)
		s.writeChunk(ctx, p, chunk[half:], res)
	default:
		s.writeReduced(ctx, p, chunk, err, res)
	}
}

// writeReduced writes letters the broker refused for good as their
// coordinates and reason, once; what still fails is lost.
func (s *store) writeReduced(ctx context.Context, p int, chunk []kafkaio.Message, cause error, res *deadResult) {
	why := shortError(cause)
	reduced := make([]kafkaio.Message, 0, len(chunk))
	for _, m := range chunk {
		if reducedWhy(m) == "" {
			reduced = append(reduced, reduce(m, why))
		}
	}
	if len(reduced) < len(chunk) {
		// Some were reduced already: refused even so.
		res.lost += int64(len(chunk) - len(reduced))
		res.lostErr = cause
	}
	if len(reduced) == 0 {
		return
	}
	err := s.client.ProduceMessages(ctx, s.dlq, p, kafkaio.Snappy, reduced)
	switch {
	case err == nil:
		res.reduced += int64(len(reduced))
	case ctx.Err() != nil || kafkaio.Retriable(err):
		res.retry = append(res.retry, reduced...)
	default:
		res.lost += int64(len(reduced))
		res.lostErr = err
	}
}

// requestBudget is how many bytes of letters, before compression, go in
// one request to a topic that accepts limit bytes: a margin for the
// batch's own header and for compression that does not shrink.
func requestBudget(limit int) int { return max(limit*3/4-128, 1) }

// chunks splits msgs into requests of at most budget bytes each (a letter
// larger than budget alone).
func chunks(msgs []kafkaio.Message, budget int) [][]kafkaio.Message {
	var out [][]kafkaio.Message
	start, size := 0, 0
	for i := range msgs {
		n := letterSize(&msgs[i])
		if i > start && size+n > budget {
			out = append(out, msgs[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(msgs) {
		out = append(out, msgs[start:])
	}
	return out
}

// shortError is err on one short line, for a header or a label.
func shortError(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// sizeLimits caches each topic's max.message.bytes.
type sizeLimits struct {
	client *kafkaio.Client
	log    *slog.Logger

	mu sync.Mutex
	m  map[string]sizeLimit
}

type sizeLimit struct {
	n  int
	at time.Time
}

// sizeLimitTTL is how long a topic's limit is trusted: an operator may
// change it, and a request refused as too large reads it again at once.
const sizeLimitTTL = 5 * time.Minute

// get is topic's limit, read from the cluster when not known; the broker
// default when the cluster will not say (no DESCRIBE_CONFIGS).
func (l *sizeLimits) get(ctx context.Context, topic string) int {
	l.mu.Lock()
	c, ok := l.m[topic]
	l.mu.Unlock()
	if ok && time.Since(c.at) < sizeLimitTTL {
		return c.n
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := l.client.MaxMessageBytes(dctx, topic)
	if err != nil {
		n = kafkaio.DefaultMaxMessageBytes
		if !ok {
			l.log.Warn("cannot read the topic's max.message.bytes: assuming the broker default", "topic", topic, "bytes", n, "err", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]sizeLimit)
	}
	l.m[topic] = sizeLimit{n, time.Now()}
	return n
}

// forget drops topic's cached limit.
func (l *sizeLimits) forget(topic string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, topic)
}
