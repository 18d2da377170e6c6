package main

import (
	"context"
	"log/slog"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/httpserver"
)

// readers is the health of the partition readers: a reader whose fetches
// fail for good (its offset deleted before it was counted, a batch that
// cannot be decoded) stops counting its partition but never skips a
// record. Each stopped partition shows in
// votestream_counter_partition_reader_stopped, is logged once per distinct
// error, and keeps the replica unready until its reader reads again.
type readers struct {
	log   *slog.Logger
	ready func(bool)
	gauge *prometheus.GaugeVec

	mu      sync.Mutex
	joined  bool           // the generation's partitions are restored
	stopped map[int]string // partition: the last error logged
}

func newReaders(reg prometheus.Registerer, ready func(bool), log *slog.Logger) *readers {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: httpserver.Namespace, Subsystem: "counter", Name: "partition_reader_stopped",
		Help: "1 while the reader of an owned partition is stopped by an error it retries (see the counter's log): the partition is not counted, and the replica is not ready.",
	}, []string{"partition"})
	reg.MustRegister(g)
	return &readers{log: log, ready: ready, gauge: g, stopped: make(map[int]string)}
}

// join says whether a generation's partitions are restored and counting.
func (r *readers) join(joined bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.joined = joined
	r.ready(r.joined && len(r.stopped) == 0)
}

// stop marks partition p's reader stopped by err, unless its generation
// (ctx) has ended: forget may have dropped p already.
func (r *readers) stop(ctx context.Context, p int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if msg := err.Error(); r.stopped[p] != msg {
		r.log.Error("partition reader stopped: the partition is not counted until it reads again", "partition", p, "err", err)
		r.stopped[p] = msg
	}
	r.gauge.WithLabelValues(strconv.Itoa(p)).Set(1)
	r.ready(false)
}

// resume marks partition p's reader reading again.
func (r *readers) resume(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.stopped[p]; !ok {
		return
	}
	delete(r.stopped, p)
	r.log.Info("partition reader reading again", "partition", p)
	r.gauge.WithLabelValues(strconv.Itoa(p)).Set(0)
	r.ready(r.joined && len(r.stopped) == 0)
}

// forget drops the partitions of an ended generation: they may be another
// replica's now, which shows them if their reader stops there too.
func (r *readers) forget(ps []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		delete(r.stopped, p)
		r.gauge.DeleteLabelValues(strconv.Itoa(p))
	}
}
