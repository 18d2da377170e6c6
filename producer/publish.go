package main

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// maxRequestBytes bounds one produce request's uncompressed records, well
// under Kafka's default 1 MiB message.max.bytes even if compression is off.
const maxRequestBytes = 768 << 10

// publisher writes votes to their partitions in sequence order. Vote seq
// goes to partition seq % partitions: every partition gets the same load,
// and a restarted producer knows where each vote belongs.
type publisher struct {
	client      *kafkaio.Client
	topic       string
	partitions  int
	compression kafka.Compression
	id          string
	log         *slog.Logger

	// last[p] is the highest sequence number of this producer already in
	// partition p (-1 for none): found at start, advanced as we publish.
	last    []int64
	skipped int64 // votes found already published at start
}

// resume reads the end of every partition to find this producer's last
// record there. The producer writes each partition in sequence order and
// never moves past a record before it is acknowledged, so every earlier
// sequence of that partition is in the log too.
func (p *publisher) resume(ctx context.Context) error {
	if p.partitions < 1 {
		return errNoPartitions
	}
	p.last = make([]int64, p.partitions)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for part := range p.last {
		p.last[part] = -1
		wg.Go(func() {
			seq := int64(-1)
			err := p.client.ScanBack(ctx, p.topic, part, 4096, func(r kafkaio.Record) bool {
				prod, s, ok := recordSeq(r.Headers)
				if ok && prod == p.id {
					seq = s
					return false
				}
				return true
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			p.last[part] = seq
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
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

// recordSeq reads votestream's producer headers.
func recordSeq(hs []kafka.Header) (producer string, seq int64, ok bool) {
	var hasSeq bool
	for _, h := range hs {
		switch h.Key {
		case kafkaio.HeaderProducer:
			producer = string(h.Value)
		case kafkaio.HeaderSeq:
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			seq, hasSeq = n, err == nil
		}
	}
	return producer, seq, producer != "" && hasSeq
}

// publish writes the votes with sequence numbers first, first+1, ... to
// their partitions, all partitions at once, each in order, and returns how
// many it sent (votes already in the topic are skipped). It returns once
// every record is acknowledged by all in-sync replicas.
func (p *publisher) publish(ctx context.Context, first int64, votes []vote.Vote) (int64, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		err  error
		sent int64
	)
	for part := 0; part < p.partitions; part++ {
		wg.Go(func() {
			n, perr := p.publishPartition(ctx, part, first, votes)
			mu.Lock()
			defer mu.Unlock()
			sent += n
			if perr != nil && err == nil {
				err = perr
			}
		})
	}
	wg.Wait()
	return sent, err
}

func (p *publisher) publishPartition(ctx context.Context, part int, first int64, votes []vote.Vote) (int64, error) {
	P := int64(p.partitions)
	// The first vote of the batch that belongs to this partition.
	start := (int64(part) - first%P + P) % P
	producer := []byte(p.id)
	var (
		buf     []byte
		records []kafka.Record
		headers []kafka.Header // two per record, allocated per request
		sent    int64
	)
	flush := func() error {
		if len(records) == 0 {
			return nil
		}
		if err := p.client.Produce(ctx, p.topic, part, p.compression, records); err != nil {
			return err
		}
		sent += int64(len(records))
		records, buf, headers = records[:0], nil, nil
		return nil
	}
	for i := start; i < int64(len(votes)); i += P {
		seq := first + i
		if seq <= p.last[part] {
			continue
		}
		if len(buf) >= maxRequestBytes {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		v := &votes[i]
		// Each record's bytes live in buf; a new buf per request keeps the
		// slices of an earlier request valid while it is retried.
		if buf == nil {
			buf = make([]byte, 0, maxRequestBytes+1024)
			headers = make([]kafka.Header, 0, 2*maxRequestBytes/150)
		}
		off := len(buf)
		buf = vote.AppendJSON(buf, v)
		val := buf[off:]
		off = len(buf)
		buf = vote.AppendID(buf, &v.ID)
		key := buf[off:]
		off = len(buf)
		buf = strconv.AppendInt(buf, seq, 10)
		seqb := buf[off:]
		h := len(headers)
		headers = append(headers,
			kafka.Header{Key: kafkaio.HeaderProducer, Value: producer},
			kafka.Header{Key: kafkaio.HeaderSeq, Value: seqb})
		records = append(records, kafka.Record{
			Time:    time.UnixMicro(v.Time),
			Key:     kafka.NewBytes(key),
			Value:   kafka.NewBytes(val),
			Headers: headers[h : h+2 : h+2],
		})
	}
	if err := flush(); err != nil {
		return sent, err
	}
	return sent, nil
}
