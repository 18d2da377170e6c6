package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/httpserver"
)

// stuckAfter is how long a partition's micro-batches may fail before it is
// shown stuck: longer than a leader election or a broker restart takes,
// short enough that a frozen count is seen within a minute.
const stuckAfter = 30 * time.Second

// stalls tracks the owned partitions whose checkpoints fail: since when,
// and the last error. A partition failing for longer than bound is stuck:
// /readyz says so and a metric names it with its error.
type stalls struct {
	bound time.Duration

	mu   sync.Mutex
	fail map[int]stall
}

type stall struct {
	since time.Time
	err   string
}

func newStalls(bound time.Duration) *stalls {
	return &stalls{bound: bound, fail: make(map[int]stall)}
}

// failed records that partition p's checkpoint failed at now.
func (s *stalls) failed(p int, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.fail[p]
	if !ok {
		st.since = now
	}
	st.err = shortError(err)
	s.fail[p] = st
}

// ok records that partition p checkpointed, or is no longer ours.
func (s *stalls) ok(ps ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		delete(s.fail, p)
	}
}

// stuckPartition is one partition failing for longer than the bound.
type stuckPartition struct {
	partition int
	failing   time.Duration
	err       string
}

// stuck lists the partitions failing longer than the bound at now.
func (s *stalls) stuck(now time.Time) []stuckPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stuckPartition
	for p, st := range s.fail {
		if d := now.Sub(st.since); d >= s.bound {
			out = append(out, stuckPartition{p, d, st.err})
		}
	}
	slices.SortFunc(out, func(a, b stuckPartition) int { return a.partition - b.partition })
	return out
}

// check is /readyz's: an error naming every stuck partition and its error.
func (s *stalls) check() error {
	st := s.stuck(time.Now())
	if len(st) == 0 {
		return nil
	}
	lines := make([]string, len(st))
	for i, p := range st {
		lines[i] = fmt.Sprintf("partition %d: micro-batches failing for %s: %s", p.partition, p.failing.Round(time.Second), p.err)
	}
	return fmt.Errorf("stuck: %s", strings.Join(lines, "; "))
}

// stallCollector exports the stuck partitions.
type stallCollector struct {
	s    *stalls
	desc *prometheus.Desc
}

func newStallCollector(s *stalls) *stallCollector {
	return &stallCollector{s: s, desc: prometheus.NewDesc(
		prometheus.BuildFQName(httpserver.Namespace, "counter", "partition_stuck_seconds"),
		fmt.Sprintf("How long each owned partition's micro-batches have failed, for those failing longer than %s, with the last error. Absent when none is.", stuckAfter),
		[]string{"partition", "error"}, nil)}
}

func (c *stallCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stallCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.s.stuck(time.Now()) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, p.failing.Seconds(), strconv.Itoa(p.partition), p.err)
	}
}
