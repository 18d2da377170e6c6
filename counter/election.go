package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// election is this replica's view of the whole election, whatever
// partitions it owns: it follows every partition of the checkpoint topic
// (one small record per micro-batch and partition) and keeps the newest
// state of each, so /results, the live page, the election metrics and the
// national table lag the count by at most one checkpoint interval.
//
// Counting is deterministic: the state of a partition at a given offset is
// the same whoever counted it. So of two checkpoints of a partition the one
// with the higher offset is simply the more recent truth, even when a stalled
// replica (a zombie) writes an older one after it; keeping the highest makes
// the view never go back.
type election struct {
	// expected and night are the counter's own settings' (SCALE,
	// INCLUDE_DC, ELECTION): the fallback while no producer id names the
	// election. own is their shape, nil if unknown (tests).
	expected [vote.NumStates]int64
	night    bool // the election is replayed along its night (ELECTION=2024)
	own      *votegen.Config
	source   string
	log      *slog.Logger
	// The votes topic counted, as the store knows it: checkpoints of
	// another topic are skipped (see checkpoint.Covers).
	topic    string
	topicID  kafkaio.TopicID
	untagged bool
	now      func() time.Time

	mu     sync.Mutex
	parts  int                       // checkpoint partitions followed; 0 until run
	states map[int]*checkpoint.State // newest state per partition
	synced map[int]time.Time         // when each partition was last read to its end
	dirty  bool                      // states changed since res was computed
	res    results.Results           // computed from states, AsOf left zero
	total  vote.Tally                // the sum of states, kept for the table
	seen   uint64                    // bumped whenever states change
	failed map[int]int64             // 1 + offset of the last unreadable record, logged once

	// quotas caches the votes expected per shape named by producer ids.
	quotas map[votegen.Config][vote.NumStates]int64
}

// newElection returns an empty view expecting the votes of expected (the
// producer's quotas, from SCALE and INCLUDE_DC).
func newElection(expected [vote.NumStates]int64, source string, log *slog.Logger) *election {
	e := &election{
		expected: expected, source: source, log: log, now: time.Now,
		states: make(map[int]*checkpoint.State), synced: make(map[int]time.Time), failed: make(map[int]int64),
		quotas: make(map[votegen.Config][vote.NumStates]int64),
	}
	e.res = results.Compute(&e.total, expected)
	e.res.Source = source
	return e
}

// results returns the current results. AsOf is the time up to which every
// checkpoint of every partition is included (zero until each partition has
// been read to its end once); it is safe for concurrent use and cheap, as
// the live page wants.
func (e *election) results() results.Results {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recompute()
	r := e.res
	r.AsOf = e.asOf()
	return r
}

// snapshot is results() with the number of changes seen, for the logger.
func (e *election) snapshot() (results.Results, uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recompute()
	r := e.res
	r.AsOf = e.asOf()
	return r, e.seen, e.parts > 0 && len(e.synced) == e.parts
}

// recompute rebuilds res from the states if they changed. e.mu is held.
func (e *election) recompute() {
	if !e.dirty {
		return
	}
	e.dirty = false
	e.total = vote.Tally{}
	// A partition with no checkpoint yet covers no offset: [0, 0).
	offsets := make(map[int]int64, e.parts)
	for p := range e.parts {
		offsets[p] = 0
	}
	var latest int64
	producers := make(map[string]bool)
	for p, st := range e.states {
		e.total.Merge(&st.Tally)
		offsets[p] = st.Offset
		latest = max(latest, st.Latest)
		for _, ps := range st.Producers {
			producers[ps.ID] = true
		}
	}
	ids := slices.Sorted(maps.Keys(producers))
	expected, night, withhold := e.expectations(ids)
	e.res = results.Compute(&e.total, expected)
	e.res.SetProducers(ids)
	if withhold != "" {
		e.res.WithholdCalls(withhold)
	}
	if night {
		e.setNight(latest)
	}
	// A fresh map each time: copies already handed out keep theirs.
	e.res.Offsets = offsets
	e.res.Source = e.source
}

// expectations returns the votes each state expects and whether the
// election has a night, from the election the producer ids name (their
// SCALE, INCLUDE_DC and ELECTION: what the counted votes are of), or from
// the counter's own settings while no id names one. withhold, if not
// empty, says why no race may be called: the ids name elections of
// several shapes, or one unlike the counter's settings, so that which
// votes to expect is in doubt. e.mu is held.
func (e *election) expectations(ids []string) (expected [vote.NumStates]int64, night bool, withhold string) {
	var shapes []votegen.Config
	for _, id := range ids {
		c, _, err := votegen.ParseProducerID(id)
		if c.Seed = 0; err == nil && !slices.Contains(shapes, c) {
			shapes = append(shapes, c)
		}
	}
	switch {
	case len(shapes) == 0:
		return e.expected, e.night, ""
	case len(shapes) > 1:
		names := make([]string, len(shapes))
		for i, c := range shapes {
			names[i] = shapeName(c)
		}
		return e.expected, e.night, fmt.Sprintf("No race is called: the votes are of elections of %d different sizes or kinds (%s), so the votes to expect are unknown.",
			len(shapes), strings.Join(names, "; "))
	}
	shape := shapes[0]
	q, ok := e.quotas[shape]
	if !ok {
		var err error
		if q, err = votegen.Quotas(shape); err != nil {
			return e.expected, e.night, "No race is called: " + err.Error() + "."
		}
		e.quotas[shape] = q
	}
	if e.own != nil && shape != *e.own {
		withhold = fmt.Sprintf("No race is called: the votes are of an election at %s, the counter is set to %s; set them on the counter like the producer.",
			shapeName(shape), shapeName(*e.own))
	}
	return q, shape.Timed(), withhold
}

// shapeName names the settings a shape comes from.
func shapeName(c votegen.Config) string {
	return fmt.Sprintf("SCALE=%s INCLUDE_DC=%t ELECTION=%s", strconv.FormatFloat(c.Scale, 'g', -1, 64), c.IncludeDC, c.Election)
}

// setNight adds the night's clock to res: the newest vote counted in any
// partition. The producer publishes the night in order, so no vote much
// older than it is still to come. e.mu is held.
func (e *election) setNight(latest int64) {
	var clock time.Time
	if latest > 0 {
		clock = time.UnixMicro(latest).UTC()
	}
	var closes [vote.NumStates]time.Time
	for s := range closes {
		closes[s] = votegen.PollClose(vote.State(s))
	}
	start, end := votegen.Night()
	e.res.SetNight(clock, start, end, &closes)
}

// asOf is the oldest of the partitions' sync times. e.mu is held.
func (e *election) asOf() time.Time {
	if e.parts == 0 || len(e.synced) < e.parts {
		return time.Time{}
	}
	var oldest time.Time
	for _, t := range e.synced {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// apply keeps st as partition p's state if it is newer than the one held.
func (e *election) apply(p int, st *checkpoint.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.states[p]; ok && st.Offset <= cur.Offset {
		return
	}
	e.states[p] = st
	e.dirty = true
	e.seen++
}

// decode reads a checkpoint record of partition p, or logs why it cannot,
// once per record: the view skips it, as a counter restoring from it would
// stop.
func (e *election) decode(p int, rec kafkaio.Record) *checkpoint.State {
	st := new(checkpoint.State)
	err := st.UnmarshalBinary(rec.Value)
	if err == nil && st.Partition != int32(p) {
		err = fmt.Errorf("checkpoint of partition %d", st.Partition)
	}
	foreign := false
	if err == nil && e.topic != "" {
		err = st.Covers(e.topic, e.topicID, e.untagged)
		foreign = err != nil
	}
	if err == nil {
		return st
	}
	e.mu.Lock()
	logged := e.failed[p] == rec.Offset+1
	e.failed[p] = rec.Offset + 1
	e.mu.Unlock()
	switch {
	case logged:
	case foreign:
		e.log.Warn("election view: checkpoint of another votes topic skipped", "partition", p, "offset", rec.Offset, "reason", err)
	default:
		e.log.Error("election view: unreadable checkpoint skipped", "partition", p, "offset", rec.Offset, "err", err)
	}
	return nil
}

func (e *election) markSynced(p int, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.synced[p] = at
}

// follow reads checkpoint partitions [0, parts) of topic until ctx ends.
// Each partition starts from its last record, then follows the new ones,
// reconnecting by itself after any error.
func (e *election) follow(ctx context.Context, client *kafkaio.Client, topic string, parts int, wait time.Duration) {
	e.mu.Lock()
	e.parts, e.dirty = parts, true
	e.mu.Unlock()
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { e.followPartition(ctx, client, topic, p, wait) })
	}
	wg.Wait()
}

func (e *election) followPartition(ctx context.Context, client *kafkaio.Client, topic string, p int, wait time.Duration) {
	// Start from the last checkpoint rather than the first: the topic keeps
	// one per micro-batch until compaction, and only the newest matters.
	last, err := retry(ctx, e.log, "election view: read last checkpoint", func() (*kafkaio.Record, error) {
		return client.LastRecord(ctx, topic, p)
	})
	if err != nil {
		return // ctx ended
	}
	first := func() (int64, error) {
		first, _, err := client.Offsets(ctx, topic, p)
		return first, err
	}
	var offset int64
	if last != nil {
		if st := e.decode(p, *last); st != nil {
			e.apply(p, st)
		}
		offset = last.Offset + 1
	} else if offset, err = retry(ctx, e.log, "election view: read first offset", first); err != nil {
		return // ctx ended
	}
	b := retryBackoff()
	for ctx.Err() == nil {
		start := e.now()
		recs, next, hwm, err := client.FetchFrom(ctx, topic, p, offset, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafkaio.ErrOffsetOutOfRange) {
				// The head was deleted: go on from what is left.
				if f, ferr := first(); ferr == nil {
					offset = f
				}
			}
			d := b.Next()
			e.log.Warn("election view: fetch failed, retrying", "partition", p, "err", err, "in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		b.Reset()
		for _, rec := range recs {
			if st := e.decode(p, rec); st != nil {
				e.apply(p, st)
			}
		}
		offset = next
		if offset >= hwm {
			// Every checkpoint acknowledged before this fetch started is
			// below the high watermark it returned, so now held.
			e.markSynced(p, start)
		}
		// A broker that answers an empty fetch at once, not after wait, or
		// records it does not return (aborted, say) must not make us spin.
		if len(recs) == 0 && !sleep(ctx, wait-e.now().Sub(start)) {
			return
		}
	}
}

// sleep waits d or until ctx ends, and reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool { return kafkaio.Sleep(ctx, d) == nil }

// logTables writes the national table to out whenever the view changes, at
// most once per every, once every partition has been read: the seed's
// show() of each micro-batch, for the whole election, from every replica.
func (e *election) logTables(ctx context.Context, out io.Writer, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var logged uint64
	var warned string // what the last warning was about
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, seen, ready := e.snapshot()
		if !ready || seen == logged {
			continue
		}
		logged = seen
		var covered int64
		for _, off := range r.Offsets {
			covered += off
		}
		fmt.Fprintf(out, "-------------------------------------------\nElection (replica %s): %d partitions, %d records\n-------------------------------------------\n%s",
			e.source, len(r.Offsets), covered, r.Table())
		if r.Warning != "" {
			fmt.Fprintf(out, "WARNING: %s\n", r.Warning)
		}
		warned = e.logWarning(&r, warned)
		attrs := []any{"counted", r.Counted, "expected", r.Expected,
			"percent_reporting", fmt.Sprintf("%.2f", r.PercentReporting),
			"electoral_votes_called", r.ElectoralVotesCalled}
		if r.Winner != results.NoCandidate {
			attrs = append(attrs, "winner", r.WinnerName)
		}
		if n := r.Night; !n.Clock.IsZero() {
			attrs = append(attrs, "night_clock", n.Clock.Format(time.RFC3339), "polls_closed", n.PollsClosed)
		}
		ev := make([]any, 0, len(r.Candidates))
		for _, c := range r.Candidates {
			ev = append(ev, slog.String(c.Name, fmt.Sprintf("%d+%d", c.ElectoralVotesWon, c.ElectoralVotesLeading)))
		}
		attrs = append(attrs, slog.Group("electoral_votes_won_plus_leading", ev...))
		e.log.Info("election view", attrs...)
	}
}

// logWarning logs r's warning when what it is about (the producers, or
// votes over expected) differs from before, and returns what it is about now.
func (e *election) logWarning(r *results.Results, before string) string {
	about := ""
	if r.Warning != "" {
		about = fmt.Sprint(r.Producers, r.OverExpected > 0, r.CallsWithheld)
	}
	if about != "" && about != before {
		e.log.Warn("election view: the count cannot be one election", "warning", r.Warning,
			"producer_ids", r.Producers, "over_expected", r.OverExpected, "counted", r.Counted, "expected", r.Expected)
	}
	return about
}

// newElectionFromConfig returns an empty view expecting the votes the
// producer's ELECTION, SCALE and INCLUDE_DC give each state.
func newElectionFromConfig(cfg config.Counter, log *slog.Logger) (*election, error) {
	gcfg := votegen.Config{Scale: cfg.Scale, IncludeDC: cfg.IncludeDC, Election: cfg.Election}
	expected, err := votegen.Quotas(gcfg)
	if err != nil {
		return nil, fmt.Errorf("SCALE: %w", err)
	}
	e := newElection(expected, cfg.ReplicaID, log)
	if gcfg.Timed() {
		e.night, e.dirty = true, true
	}
	gcfg.Election = cmp.Or(gcfg.Election, votegen.ElectionSeed)
	e.own = &gcfg
	return e, nil
}

// startElection follows the checkpoint topic and writes the national table
// until ctx ends or the returned stop is called; stop waits for both.
func startElection(ctx context.Context, view *election, client *kafkaio.Client, cfg config.Counter, parts int, out io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Idle long polls end after 500ms; a new checkpoint ends them at once.
	wg.Go(func() { view.follow(ctx, client, cfg.Kafka.CheckpointTopic, parts, 500*time.Millisecond) })
	wg.Go(func() { view.logTables(ctx, out, cfg.BatchMaxWait) })
	return func() { cancel(); wg.Wait() }
}
