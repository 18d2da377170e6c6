package main

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/vote"
)

// owned holds the last checkpointed state of each partition this replica
// owns. Metrics and logs read it, so what they show is always what is
// durably counted; each replica shows only its own partitions, and the sum
// over replicas is the whole count. It shows them only while the
// generation's lease is held: a replica that cannot be sure it still owns
// its partitions shows none, so no moment shows a partition twice.
type owned struct {
	mu     sync.Mutex
	states map[int]*checkpoint.State
	hwm    map[int]int64
	lease  *lease
}

func newOwned() *owned {
	return &owned{states: make(map[int]*checkpoint.State), hwm: make(map[int]int64)}
}

// set holds the generation's restored states, shown while l is held.
func (o *owned) set(states map[int]*checkpoint.State, l *lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lease = l
	for id, st := range states {
		o.states[id] = st.Clone()
	}
}

func (o *owned) update(states []*checkpoint.State, hwm map[int]int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range states {
		o.states[int(st.Partition)] = st
	}
	for id, h := range hwm {
		o.hwm[id] = h
	}
}

func (o *owned) setLag(hwm map[int]int64) { o.update(nil, hwm) }

func (o *owned) drop(ids []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		delete(o.states, id)
		delete(o.hwm, id)
	}
	if len(o.states) == 0 {
		o.lease = nil
	}
}

// visible is the states to show now; o.mu is held.
func (o *owned) visible() map[int]*checkpoint.State {
	if o.lease != nil && !o.lease.held(time.Now()) {
		return nil
	}
	return o.states
}

// totals sums the owned partitions.
func (o *owned) totals() (t vote.Tally, rejected int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range o.visible() {
		t.Merge(&st.Tally)
		for _, n := range st.Rejected {
			rejected += n
		}
	}
	return t, rejected
}

// collector exports the owned state as const metrics on each scrape.
type collector struct {
	owned                            *owned
	votes, rejected, offset, lag, nP *prometheus.Desc
}

func newCollector(o *owned) *collector {
	const ns = httpserver.Namespace
	return &collector{
		owned: o,
		votes: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "votes"),
			"Votes counted and checkpointed in the partitions this replica owns. Sum over replicas for the whole count.",
			[]string{"candidate", "state", "age_group"}, nil),
		rejected: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "rejected_records"),
			"Records rejected, by reason, in the partitions this replica owns (checkpointed, so exact across restarts).",
			[]string{"reason"}, nil),
		offset: prometheus.NewDesc(prometheus.BuildFQName(ns, "counter", "partition_offset"),
			"Next offset to count in each owned partition, as checkpointed.", []string{"partition"}, nil),
		lag: prometheus.NewDesc(prometheus.BuildFQName(ns, "counter", "partition_lag_records"),
			"Records in each owned partition not yet checkpointed.", []string{"partition"}, nil),
		nP: prometheus.NewDesc(prometheus.BuildFQName(ns, "counter", "partitions_owned"),
			"Partitions this replica owns.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.votes
	ch <- c.rejected
	ch <- c.offset
	ch <- c.lag
	ch <- c.nP
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	o := c.owned
	o.mu.Lock()
	var t vote.Tally
	var rej [vote.NumReasons]int64
	type po struct{ offset, lag int64 }
	states := o.visible()
	parts := make(map[int]po, len(states))
	for id, st := range states {
		t.Merge(&st.Tally)
		for r, n := range st.Rejected {
			rej[r] += n
		}
		lag := int64(0)
		if h, ok := o.hwm[id]; ok && h > st.Offset {
			lag = h - st.Offset
		}
		parts[id] = po{st.Offset, lag}
	}
	o.mu.Unlock()

	for ci := range t {
		cand := vote.Candidate(ci).String()
		for si := range t[ci] {
			for ai, n := range t[ci][si] {
				if n == 0 {
					continue
				}
				ch <- prometheus.MustNewConstMetric(c.votes, prometheus.GaugeValue, float64(n),
					cand, vote.State(si).String(), vote.AgeGroup(ai).String())
			}
		}
	}
	for r := vote.ReasonEmpty; r < vote.NumReasons; r++ {
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.GaugeValue, float64(rej[r]), r.String())
	}
	for id, p := range parts {
		l := strconv.Itoa(id)
		ch <- prometheus.MustNewConstMetric(c.offset, prometheus.GaugeValue, float64(p.offset), l)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(p.lag), l)
	}
	ch <- prometheus.MustNewConstMetric(c.nP, prometheus.GaugeValue, float64(len(parts)))
}

// metrics are this process's own counters.
type metrics struct {
	records  prometheus.Counter
	rejected [vote.NumReasons]prometheus.Counter
	// Dead letters by what became of them: written whole, written reduced
	// to their coordinates and reason, or lost (not written at all).
	deadWritten, deadReduced, deadLost prometheus.Counter
	batches                            prometheus.Counter
	batchDuration                      prometheus.Histogram
	rebalances                         prometheus.Counter
	restore                            prometheus.Histogram
	latency                            *latencyHistogram
}

func newMetrics(reg prometheus.Registerer, o *owned) *metrics {
	const ns, sub = httpserver.Namespace, "counter"
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_total",
			Help: "Records consumed by this process."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "batches_total",
			Help: "Micro-batches checkpointed by this process."}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_duration_seconds",
			Help: "Time to checkpoint one micro-batch (dead letters, checkpoints, commit).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		deadWritten: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_written_total",
			Help: "Dead letters written whole to the dead-letter topic (a run of duplicates is one)."}),
		deadReduced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_reduced_total",
			Help: "Dead letters written reduced to their coordinates and reason: too large for the topic, refused by it, or over the memory bound."}),
		deadLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_lost_total",
			Help: "Dead letters not written at all (refused even reduced, or past the pending bounds); their records are counted by reason all the same."}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rebalances_total",
			Help: "Consumer group generations this process joined."}),
		restore: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "restore_duration_seconds",
			Help: "Time from joining a generation to counting again (checkpoints loaded).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	m.latency = newLatencyHistogram(prometheus.BuildFQName(ns, sub, "vote_latency_seconds"),
		"Time from each counted vote's record timestamp to the checkpoint that shows it in /metrics.",
		prometheus.ExponentialBuckets(0.005, 2, 12))
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rejected_records_total",
		Help: "Records this process rejected, by reason."}, []string{"reason"})
	for r := vote.ReasonEmpty; r < vote.NumReasons; r++ {
		m.rejected[r] = rejected.WithLabelValues(r.String())
	}
	reg.MustRegister(m.records, m.deadWritten, m.deadReduced, m.deadLost, m.batches, m.batchDuration, m.rebalances, m.restore, rejected, newCollector(o), m.latency)
	return m
}

// latencyHistogram is a histogram observed many samples at a time: votes
// are observed per checkpoint, by runs that share a millisecond timestamp,
// which prometheus.Histogram could only take one Observe per vote.
type latencyHistogram struct {
	desc  *prometheus.Desc
	upper []float64

	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	count  uint64
	sum    float64
}

func newLatencyHistogram(name, help string, buckets []float64) *latencyHistogram {
	return &latencyHistogram{
		desc:   prometheus.NewDesc(name, help, nil, nil),
		upper:  buckets,
		counts: make([]uint64, len(buckets)+1),
	}
}

// observeN records n samples of v seconds.
func (h *latencyHistogram) observeN(v float64, n uint64) {
	i := sort.SearchFloat64s(h.upper, v) // first bucket with upper bound >= v
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[i] += n
	h.count += n
	h.sum += v * float64(n)
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	buckets := make(map[float64]uint64, len(h.upper))
	var cum uint64
	for i, le := range h.upper {
		cum += h.counts[i]
		buckets[le] = cum
	}
	count, sum := h.count, h.sum
	h.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
}
