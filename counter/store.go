package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/kafkaio"
)

// store keeps checkpoints in the compacted checkpoint topic: the state of
// votes partition p is the last record of checkpoint partition p. Every
// checkpoint is a whole, self-consistent state (totals with the offset they
// cover), so even a late write from a replica that lost the partition can
// only make the next owner redo work, never count wrong.
type store struct {
	client *kafkaio.Client
	// votes and votesID are the votes topic the checkpoints count, which
	// every checkpoint names; untagged says whether checkpoints that name
	// no topic (written before they did) count it (see Covers).
	votes    string
	votesID  kafkaio.TopicID
	untagged bool
	topic    string
	dlq      string
	dlqN     int
	owner    string
	log      *slog.Logger
	// limits are the topics' max.message.bytes, for the dead letters.
	limits *sizeLimits
}

// load returns partition p's last checkpoint, or an empty state at the
// start of the partition. A checkpoint of another votes topic is ignored,
// with one line: this topic's partition is counted from its start.
func (s *store) load(ctx context.Context, p int) (*checkpoint.State, error) {
	rec, err := s.client.LastRecord(ctx, s.topic, p)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s/%d: %w", s.topic, p, err)
	}
	fresh := &checkpoint.State{Topic: s.votes, TopicID: s.votesID, Partition: int32(p)}
	if rec == nil {
		return fresh, nil
	}
	st := new(checkpoint.State)
	if err := st.UnmarshalBinary(rec.Value); err != nil {
		// A checkpoint we cannot read must stop us: starting from zero
		// would count everything again on top of nothing, which is right
		// only if it is really the first.
		return nil, fmt.Errorf("checkpoint %s/%d at offset %d: %w", s.topic, p, rec.Offset, err)
	}
	if st.Partition != int32(p) {
		return nil, fmt.Errorf("checkpoint %s/%d at offset %d is for partition %d: %w", s.topic, p, rec.Offset, st.Partition, checkpoint.ErrCorrupt)
	}
	if err := st.Covers(s.votes, s.votesID, s.untagged); err != nil {
		s.log.Warn("checkpoint ignored: counting the partition from its start", "partition", p,
			"checkpoint_topic", s.topic, "checkpoint_offset", rec.Offset, "topic", s.votes, "reason", err)
		return fresh, nil
	}
	st.Topic, st.TopicID = s.votes, s.votesID
	return st, nil
}

// loadAll loads every partition's checkpoint at once, retrying transient
// errors until ctx ends. A votes partition without a checkpoint partition
// (partitions added to the votes topic only) is final: no retry adds it.
func (s *store) loadAll(ctx context.Context, parts []int) (map[int]*checkpoint.State, error) {
	if err := s.checkPartitions(ctx, parts); err != nil {
		return nil, err
	}
	out := make(map[int]*checkpoint.State, len(parts))
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	for _, p := range parts {
		wg.Go(func() {
			st, err := retry(ctx, s.log, "load checkpoint", func() (*checkpoint.State, error) { return s.load(ctx, p) })
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[p] = st
		})
	}
	wg.Wait()
	return out, firstErr
}

// checkPartitions fails when a votes partition has no checkpoint
// partition, saying how to add them.
func (s *store) checkPartitions(ctx context.Context, parts []int) error {
	if len(parts) == 0 {
		return nil
	}
	n, err := retry(ctx, s.log, "count checkpoint partitions", func() (int, error) { return s.client.PartitionCount(ctx, s.topic) })
	if err != nil {
		return fmt.Errorf("checkpoint topic %s: %w", s.topic, err)
	}
	if last := slices.Max(parts); last >= n {
		return fmt.Errorf("%w: votes partition %d of %s has no checkpoint partition: %s has %d partitions; add partitions to it to match the votes topic's "+
			"(kafka-topics --alter --topic %s --partitions N), then start the counters again", errFinal, last, s.votes, s.topic, n, s.topic)
	}
	return nil
}

// errFinal marks restore errors that no retry or rejoin can fix.
var errFinal = errors.New("cannot restore")

// save writes checkpoints, one compressed request each, acknowledged by
// all in-sync replicas before save returns; it returns each one's error. A
// checkpoint is one record of a few kilobytes and cannot be split: one the
// broker refuses fails its partition alone, which then shows as stuck.
func (s *store) save(ctx context.Context, states []*checkpoint.State) []error {
	errs := make([]error, len(states))
	var wg sync.WaitGroup
	now := time.Now().UnixMilli()
	for i, st := range states {
		wg.Go(func() {
			st.Written, st.Owner = now, s.owner
			b, err := st.MarshalBinary()
			if err == nil {
				err = s.client.ProduceMessages(ctx, s.topic, int(st.Partition), kafkaio.Snappy, []kafkaio.Message{{
					Key:   fmt.Appendf(nil, "partition-%d", st.Partition),
					Value: b,
					Time:  time.UnixMilli(now),
				}})
			}
			if err != nil {
				err = fmt.Errorf("write checkpoint: %w", err)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}

// retry calls fn until it succeeds or ctx ends, backing off up to 5s.
func retry[T any](ctx context.Context, log *slog.Logger, what string, fn func() (T, error)) (T, error) {
	b := retryBackoff()
	for {
		v, err := fn()
		// A corrupt checkpoint stays corrupt: say so rather than spin.
		// Nor can a retry grant a missing ACL.
		if err == nil || ctx.Err() != nil || errors.Is(err, checkpoint.ErrCorrupt) || errors.Is(err, errFinal) || kafkaio.IsAuth(err) {
			return v, err
		}
		d := b.Next()
		log.Warn(what+" failed, retrying", "err", err, "in", d)
		if kafkaio.Sleep(ctx, d) != nil {
			return v, err
		}
	}
}

// retryBackoff is the counter's backoff between attempts at reading
// checkpoints: from 200ms up to 5s.
func retryBackoff() kafkaio.Backoff {
	return kafkaio.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
}
