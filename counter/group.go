package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// counter runs the consumer group: for each generation it restores the
// assigned partitions from their checkpoints, counts them, and checkpoints
// every micro-batch and on revocation.
type counter struct {
	cfg     config.Counter
	client  *kafkaio.Client
	store   *store
	log     *slog.Logger
	metrics *metrics
	owned   *owned
	readers *readers
	stalls  *stalls
	batchID int64
	// partitions is the votes topic's partition count.
	partitions int
}

// run consumes until ctx ends, or until something no rejoin can fix.
func (c *counter) run(ctx context.Context) error {
	return c.client.Group(ctx, kafkaio.GroupConfig{
		ID: c.cfg.GroupID, Topic: c.cfg.Kafka.Topic,
		SessionTimeout: c.cfg.SessionTimeout, RebalanceTimeout: c.cfg.RebalanceTimeout,
		Rejoining: func() { c.readers.join(false) },
	}, c.generation)
}

// generation counts the assigned partitions until the generation ends, or
// until its lease is lost: then it lets go of them at once, without a final
// checkpoint (they may be someone else's by now).
func (c *counter) generation(ctx context.Context, gen *kafkaio.Generation) error {
	c.metrics.rebalances.Inc()
	defer c.readers.forget(gen.Partitions)
	l, stopLease := c.startLease(ctx, gen)
	defer stopLease()
	parts, err := c.restore(ctx, gen, l)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return kafkaio.Fatal(err)
	}
	r := &reading{gen: gen, lease: l, parts: parts, signals: newBatchSignals(), failures: make(chan error, 1)}
	readCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	r.stop = stopReaders
	for _, p := range parts {
		r.readers.Go(func() { c.keepReading(readCtx, p, r.signals, &r.pending, r.fail) })
	}
	return c.batches(ctx, r)
}

// restore loads the generation's partitions from their checkpoints and
// shows them, under the lease.
func (c *counter) restore(ctx context.Context, gen *kafkaio.Generation, l *lease) ([]*partition, error) {
	start := time.Now()
	states, err := c.store.loadAll(ctx, gen.Partitions)
	if err != nil {
		return nil, err
	}
	parts := make([]*partition, len(gen.Partitions))
	for i, id := range gen.Partitions {
		st := states[id]
		parts[i] = &partition{id: id, state: *st, saved: st.Offset, hwm: -1}
	}
	// Partitions added to the votes topic are assigned after the rebalance
	// they cause (the group watches the partition count).
	c.partitions = max(c.partitions, slices.Max(append([]int{-1}, gen.Partitions...))+1)
	c.owned.set(states, l)
	c.readers.join(true)
	c.log.Info("partitions restored", "generation", gen.ID, "partitions", gen.Partitions,
		"votes", sumVotes(states), "took", time.Since(start).Round(time.Millisecond))
	c.metrics.restore.Observe(time.Since(start).Seconds())
	return parts, nil
}

// reading is a generation under way: its partitions' readers, one each,
// counting into their states, and what they tell the micro-batch loop.
type reading struct {
	gen     *kafkaio.Generation
	lease   *lease
	parts   []*partition
	signals batchSignals
	pending atomic.Int64 // records counted since the last micro-batch
	readers sync.WaitGroup
	stop    func() // stops the readers
	// A reader or micro-batch the broker refuses (a missing ACL) stops the
	// counter: no retry can fix it.
	failures chan error
}

func (r *reading) fail(err error) {
	select {
	case r.failures <- kafkaio.Fatal(err):
	default:
	}
}

// batches is the micro-batch loop: checkpoint when enough records are
// pending, when the wait is over, or soon after a reader catches up with
// its partition, so a live stream shows in /metrics within a fraction of
// BATCH_MAX_WAIT; caughtUp batches are at least idleGap apart, so a steady
// trickle cannot turn every fetch into a checkpoint.
func (c *counter) batches(ctx context.Context, r *reading) error {
	idleGap := c.cfg.BatchMaxWait / 10
	last := time.Now()
	tick := time.NewTicker(c.cfg.BatchMaxWait)
	defer tick.Stop()
	// The readers see the high watermark only with records; ask the broker
	// too, so lag still shows when a reader is stuck.
	ends := time.NewTicker(endOffsetsInterval)
	defer ends.Stop()
	for {
		select {
		case <-r.lease.lost:
			// Not waiting for the readers: one stuck on a dead connection
			// would hold the rejoin up; they stop by themselves.
			r.stop()
			c.owned.drop(r.gen.Partitions)
			c.stalls.ok(r.gen.Partitions...)
			return r.lease.reason()
		case <-ends.C:
			c.refreshEnds(ctx, r.parts)
			continue
		case err := <-r.failures:
			return c.release(ctx, r, err)
		case <-ctx.Done():
			return c.release(ctx, r, nil)
		case <-tick.C:
		case <-r.signals.full:
		case <-r.signals.caughtUp:
			if wait := idleGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					continue // the next round saves everything
				case <-time.After(wait):
				}
			}
		}
		if err := c.microBatch(ctx, r.gen, r.lease, r.parts, &r.pending, false); err != nil && ctx.Err() == nil {
			if kafkaio.IsAuth(err) {
				r.fail(err)
				continue
			}
			c.log.Error("micro-batch", "err", err)
		}
		last = time.Now()
	}
}

// release ends the generation (revoked, shutting down or failed): stop
// reading, then save everything counted, within a bound well inside the
// rebalance timeout.
func (c *counter) release(ctx context.Context, r *reading, failure error) error {
	r.stop()
	r.readers.Wait()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RebalanceTimeout/2)
	err := c.microBatch(sctx, r.gen, r.lease, r.parts, &r.pending, true)
	cancel()
	c.owned.drop(r.gen.Partitions)
	c.stalls.ok(r.gen.Partitions...)
	if failure != nil {
		return failure
	}
	if kafkaio.IsAuth(err) {
		return kafkaio.Fatal(err)
	}
	if err != nil {
		return fmt.Errorf("final checkpoint: %w", err)
	}
	c.log.Info("partitions released", "generation", r.gen.ID, "partitions", r.gen.Partitions)
	return nil
}

const endOffsetsInterval = 5 * time.Second

// startLease starts the generation's lease and the heartbeats that renew
// it; the returned func stops both.
func (c *counter) startLease(ctx context.Context, gen *kafkaio.Generation) (*lease, func()) {
	l := newLease(leaseTTL(c.cfg.SessionTimeout, c.cfg.RebalanceTimeout))
	ctx, cancel := context.WithCancel(ctx)
	var beats sync.WaitGroup
	beats.Go(func() { c.keepLease(ctx, gen, l) })
	return l, func() { cancel(); beats.Wait(); l.stop() }
}

// keepLease heartbeats the coordinator on the client's own connections
// every heartbeat interval and renews l from each acknowledged heartbeat's
// send time, until ctx ends or the coordinator says the member is gone. A
// heartbeat may take up to the lease's ttl to be answered (a slow answer
// still renews from its send time), so several can be in flight on a busy
// host. A rebalance in progress renews nothing: kafka-go's own heartbeat
// ends the generation then.
func (c *counter) keepLease(ctx context.Context, gen *kafkaio.Generation, l *lease) {
	var beats sync.WaitGroup
	defer beats.Wait()
	tick := time.NewTicker(kafkaio.HeartbeatInterval(c.cfg.SessionTimeout))
	defer tick.Stop()
	for {
		sent := time.Now()
		beats.Go(func() {
			bctx, cancel := context.WithTimeout(ctx, l.ttl)
			defer cancel()
			err := gen.Heartbeat(bctx)
			switch {
			case err == nil:
				l.renew(sent)
			case kafkaio.MemberGone(err):
				l.end(err)
			case bctx.Err() == nil:
				c.log.Debug("lease heartbeat", "err", err)
			}
		})
		select {
		case <-ctx.Done():
			return
		case <-l.lost:
			return
		case <-tick.C:
		}
	}
}

// refreshEnds updates the owned partitions' high watermarks from the broker.
func (c *counter) refreshEnds(ctx context.Context, parts []*partition) {
	ctx, cancel := context.WithTimeout(ctx, endOffsetsInterval)
	defer cancel()
	ends, err := c.client.EndOffsets(ctx, c.cfg.Kafka.Topic, c.partitions)
	if err != nil {
		c.log.Debug("end offsets", "err", err)
		return
	}
	for _, p := range parts {
		p.mu.Lock()
		p.hwm = max(p.hwm, ends[p.id])
		p.mu.Unlock()
	}
}

// fetchMaxBytes bounds one fetch of one partition. Twelve partitions are
// fetched at once, and each fetch is held three times over (the response,
// its decompressed pages, the copied values), so this keeps the counter's
// memory flat and small whatever the backlog; larger fetches did not read
// faster from the local broker.
const fetchMaxBytes = 256 << 10

// keepReading reads partition p until ctx ends. A read that fails for good
// (see readers) is tried again from the same offset, at most every
// readRetryMax: never past a record not counted.
func (c *counter) keepReading(ctx context.Context, p *partition, signals batchSignals, pending *atomic.Int64, fail func(error)) {
	b := kafkaio.Backoff{Min: time.Second, Max: readRetryMax}
	for {
		err := c.read(ctx, p, signals, pending)
		if kafkaio.IsAuth(err) {
			fail(err)
			return
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		c.readers.stop(ctx, p.id, err)
		if kafkaio.Sleep(ctx, b.Next()) != nil {
			return
		}
	}
}

// readRetryMax bounds the wait between attempts of a stopped reader.
const readRetryMax = 30 * time.Second

// read counts one partition's records from its checkpointed offset on, a
// whole fetch at a time, until ctx ends or a fetch fails.
func (c *counter) read(ctx context.Context, p *partition, signals batchSignals, pending *atomic.Int64) error {
	p.mu.Lock()
	offset := p.state.Offset
	p.mu.Unlock()
	limit := int64(c.cfg.BatchMaxRecords)
	topic := c.cfg.Kafka.Topic
	opts := kafkaio.ConsumeOptions{MaxBytes: fetchMaxBytes, MaxWait: 250 * time.Millisecond}
	resumed := false
	return c.client.Consume(ctx, topic, p.id, offset, opts, func(f *kafkaio.Fetch) error {
		n, rejects := p.applyFetch(topic, f)
		if f.Err() != nil {
			return f.Err() // what was read is counted; Consume reports it
		}
		// Logged by the micro-batch, one line a reason: a retry storm is
		// tens of thousands of duplicates.
		if !resumed {
			c.readers.resume(p.id)
			resumed = true
		}
		for _, r := range rejects {
			c.metrics.rejected[r.reason].Inc()
		}
		c.metrics.records.Add(float64(n))
		if after := pending.Add(n); after >= limit && after-n < limit {
			signals.notify(signals.full)
		}
		if f.Last+1 >= f.HighWatermark {
			signals.notify(signals.caughtUp)
		}
		return nil
	})
}

// batchSignals wake the micro-batch loop early: full when enough records
// are pending, caughtUp when a reader has reached the end of its partition.
type batchSignals struct{ full, caughtUp chan struct{} }

func newBatchSignals() batchSignals {
	return batchSignals{full: make(chan struct{}, 1), caughtUp: make(chan struct{}, 1)}
}

func (batchSignals) notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// microBatch checkpoints every partition that moved, then publishes the
// checkpointed totals to metrics and logs. Dead letters are written first,
// within their own bound, and never hold a checkpoint up; each partition's
// checkpoint succeeds or fails on its own.
func (c *counter) microBatch(ctx context.Context, gen *kafkaio.Generation, l *lease, parts []*partition, pending *atomic.Int64, final bool) error {
	start := time.Now()
	records := pending.Swap(0)
	var (
		states []*checkpoint.State
		dead   []kafkaio.Message
		lost   int64
		seen   [vote.NumReasons]map[int]int64
		taken  = make(map[int]takenBatch)
		byID   = make(map[int]*partition, len(parts))
		lags   = make(map[int]int64, len(parts))
	)
	for _, p := range parts {
		byID[p.id] = p
		snap := p.snapshot(c.cfg.Kafka.Topic)
		if snap.hwm >= 0 {
			lags[p.id] = snap.hwm
		}
		for r, n := range snap.seen {
			if n > 0 {
				if seen[r] == nil {
					seen[r] = make(map[int]int64)
				}
				seen[r][p.id] = n
			}
		}
		dead = append(dead, snap.dead...)
		lost += snap.lost
		if snap.state != nil {
			states = append(states, snap.state)
			taken[p.id] = takenBatch{snap.stamps}
		}
	}
	c.logRejected(seen)
	if len(states) == 0 && len(dead) == 0 {
		c.countDead(deadResult{lost: lost}, final)
		c.owned.setLag(lags)
		return nil
	}
	sctx, cancel, err := l.bound(ctx)
	if err != nil {
		// Nothing is lost: the counts stay in memory for the next try, and
		// the dead letters go back to wait for it.
		c.putBack(byID, dead, taken, pending, records)
		if final {
			lost += int64(len(dead)) // the partitions go with them
		}
		c.countDead(deadResult{lost: lost}, final)
		return err
	}
	defer cancel()
	dres := c.store.writeDead(sctx, dead)
	dres.lost += lost
	if !final {
		requeueDead(byID, dres.retry)
	}
	c.countDead(dres, final)
	errs := c.store.save(sctx, states)
	saved, failed := c.settle(byID, states, errs, taken, time.Now())
	if len(failed) > 0 {
		pending.Add(records)
	}
	if len(saved) == 0 {
		c.owned.setLag(lags)
		return errors.Join(failed...)
	}
	c.published(gen, l, saved, taken, lags, final)
	c.batchID++
	took := time.Since(start)
	c.metrics.batches.Inc()
	c.metrics.batchDuration.Observe(took.Seconds())
	c.logTotals(records, len(saved), took, final)
	return errors.Join(failed...)
}

// putBack returns what a micro-batch took to its partitions, for the next.
func (c *counter) putBack(byID map[int]*partition, dead []kafkaio.Message, taken map[int]takenBatch, pending *atomic.Int64, records int64) {
	pending.Add(records)
	for id, t := range taken {
		byID[id].requeue(t.stamps)
	}
	requeueDead(byID, dead)
}

// requeueDead puts dead letters back on the partitions they came from.
func requeueDead(byID map[int]*partition, dead []kafkaio.Message) {
	bySource := make(map[int][]kafkaio.Message)
	for _, m := range dead {
		bySource[m.Partition] = append(bySource[m.Partition], m)
	}
	for id, msgs := range bySource {
		byID[id].requeueDead(msgs)
	}
}

// settle marks each partition checkpointed or failing: a failed one keeps
// its timestamps for the next try and counts toward being stuck.
func (c *counter) settle(byID map[int]*partition, states []*checkpoint.State, errs []error, taken map[int]takenBatch, now time.Time) (saved []*checkpoint.State, failed []error) {
	for i, st := range states {
		id := int(st.Partition)
		p := byID[id]
		if err := errs[i]; err != nil {
			p.requeue(taken[id].stamps)
			c.stalls.failed(id, err, now)
			failed = append(failed, fmt.Errorf("partition %d: %w", id, err))
			continue
		}
		p.mu.Lock()
		p.saved = st.Offset
		p.mu.Unlock()
		c.stalls.ok(id)
		saved = append(saved, st)
	}
	return saved, failed
}

// published shows the saved checkpoints in metrics, observes their votes'
// latency and commits their offsets.
func (c *counter) published(gen *kafkaio.Generation, l *lease, saved []*checkpoint.State, taken map[int]takenBatch, lags map[int]int64, final bool) {
	c.owned.update(saved, lags)
	// Visible in /metrics from now: each counted vote's latency is from its
	// record timestamp to here.
	visible := time.Now().UnixMilli()
	offsets := make(map[int]int64, len(saved))
	for _, st := range saved {
		offsets[int(st.Partition)] = st.Offset
		for _, r := range taken[int(st.Partition)].stamps {
			c.metrics.latency.observeN(float64(visible-r.ms)/1000, uint64(r.n))
		}
	}
	// Committed offsets are for lag tools only: counting restarts from the
	// checkpoint, which carries its own offset.
	// Only under the lease: on a dead link the commit waits out kafka-go's
	// timeout, and the loop would notice the lease lost only after it.
	if l.held(time.Now()) {
		if err := gen.Commit(offsets); err != nil && !final {
			c.log.Debug("commit offsets", "err", err)
		}
	}
}

// countDead counts what became of a micro-batch's dead letters, and logs
// the lost ones in one line. On the final micro-batch the letters that
// could not be written for now are lost too: the partitions go.
func (c *counter) countDead(d deadResult, final bool) {
	if final {
		d.lost += int64(len(d.retry))
	}
	if d.written+d.reduced+d.lost == 0 && len(d.retry) == 0 {
		return
	}
	c.metrics.deadWritten.Add(float64(d.written))
	c.metrics.deadReduced.Add(float64(d.reduced))
	c.metrics.deadLost.Add(float64(d.lost))
	if d.reduced > 0 {
		c.log.Warn("dead letters written reduced to their coordinates", "letters", d.reduced)
	}
	if d.lost > 0 {
		attrs := []any{"letters", d.lost}
		if d.lostErr != nil {
			attrs = append(attrs, "err", d.lostErr)
		}
		c.log.Error("dead letters lost: their records are counted by reason, but not in the dead-letter topic", attrs...)
	}
	if n := len(d.retry); n > 0 && !final {
		c.log.Warn("dead letters not written yet: retried with the next micro-batch", "letters", n)
	}
}

// logRejected logs the records rejected since the last micro-batch, one
// line a reason, with how many in each partition.
func (c *counter) logRejected(seen [vote.NumReasons]map[int]int64) {
	for r, parts := range seen {
		if len(parts) == 0 {
			continue
		}
		var n int64
		for _, k := range parts {
			n += k
		}
		c.log.Warn("records rejected", "reason", vote.Reason(r), "records", n, "partitions", parts)
	}
}

// takenBatch is what a micro-batch took from a partition besides its state.
type takenBatch struct {
	stamps []stampRun
}

// logTotals logs the accumulated totals of the owned partitions per
// candidate: the seed's table, as one structured line.
func (c *counter) logTotals(records int64, checkpoints int, took time.Duration, final bool) {
	t, rejected := c.owned.totals()
	attrs := []any{
		"batch", c.batchID, "records", records, "checkpoints", checkpoints,
		"took", took.Round(time.Microsecond), "votes", t.Total(), "rejected", rejected,
	}
	if final {
		attrs = append(attrs, "final", true)
	}
	cands := make([]any, 0, vote.NumCandidates)
	for i, cand := range vote.Candidates() {
		cands = append(cands, slog.Int64(cand.Name, t.CandidateTotal(vote.Candidate(i))))
	}
	attrs = append(attrs, slog.Group("total_votes", cands...))
	c.log.Info("micro-batch", attrs...)
}

func sumVotes(states map[int]*checkpoint.State) int64 {
	var n int64
	for _, st := range states {
		n += st.Votes()
	}
	return n
}
