package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/internal/lifecycle"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/logging"
	"github.com/votestream/votestream/pkg/memlimit"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// shutdownGrace bounds how long a batch under way may take to be
// acknowledged after SIGTERM: long enough for a healthy broker, short
// enough to stop well before an orchestrator's SIGKILL.
const shutdownGrace = 10 * time.Second

func run(ctx context.Context, environ []string, stdout, stderr io.Writer) error {
	var cfg config.Producer
	if err := config.Parse(&cfg, environ); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(cfg.Log, stderr).With("component", "producer")
	memLimit := memlimit.Current() // main applies it

	seed, err := parseSeed(cfg.Seed)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	gcfg := votegen.Config{Seed: seed, Scale: cfg.Scale, IncludeDC: cfg.IncludeDC, Election: cmp.Or(cfg.Election, votegen.ElectionSeed)}
	gen, err := votegen.New(gcfg)
	if err != nil {
		return fmt.Errorf("config: SCALE: %w", err)
	}
	log.Info("election", "election", cfg.Election, "seed", seed, "scale", cfg.Scale, "votes", gen.Total(),
		"votes_per_batch", cfg.VotesPerBatch, "batch_interval", cfg.BatchInterval, "output_dir", cfg.OutputDir, "memory_limit_mib", memLimit>>20)

	// Instrumentation and listeners, bound before any Kafka work.
	reg := httpserver.NewRegistry()
	m := newMetrics(reg)
	m.expected.Set(float64(gen.Total()))
	srv, err := httpserver.Listen(cfg.HTTPAddr, cfg.HTTPWebConfigFile, reg, log)
	if err != nil {
		return err
	}
	// The HTTP server stops once the election is published (or a signal
	// stopped it), and its failure stops the producer.
	var g lifecycle.Group
	g.Go(ctx, func(ctx context.Context) error { return publish(ctx, cfg, gen, gcfg, srv, m, log) })
	g.Go(context.WithoutCancel(ctx), srv.Serve)
	return g.Run()
}

// publish is the producer once its HTTP port is bound: it publishes the
// election, from where an earlier run stopped, then closes the Kafka
// client.
func publish(ctx context.Context, cfg config.Producer, gen *votegen.Generator, gcfg votegen.Config, srv *httpserver.Server, m *metrics, log *slog.Logger) error {
	client, parts, err := kafkaio.Open(ctx, cfg.Kafka, log)
	if err != nil {
		return err
	}
	defer client.Close()
	srv.SetReady(true)

	p := &publisher{
		client:      client,
		topic:       cfg.Kafka.Topic,
		partitions:  parts[cfg.Kafka.Topic],
		compression: kafkaio.Compression(cfg.Compression),
		election:    gcfg,
		log:         log,
	}
	if err := p.resume(ctx); err != nil {
		return fmt.Errorf("find where to resume: %w", err)
	}
	log.Info("publishing", "producer_id", p.id, "partitions", p.partitions)
	m.published.Add(float64(p.skipped))
	files := &fileDrop{dir: cfg.OutputDir, election: votegen.ProducerID(gcfg, 0), log: log, errors: m.fileErrors}
	if err := files.init(); err != nil {
		log.Error("JSON file drop disabled", "dir", cfg.OutputDir, "err", err)
	}
	return produce(ctx, gen, p, files, cfg, m, log)
}

// pipelineDepth is how many batches may be published at once. The next
// batch is generated, and each partition encodes and sends its share of it,
// while the broker still acknowledges the previous one, so the producer and
// the broker do not wait for each other. Each partition still sends its
// records in order, one request at a time.
const pipelineDepth = 2

// produce runs the batch loop until every quota is published or ctx ends.
func produce(ctx context.Context, gen *votegen.Generator, p *publisher, files *fileDrop, cfg config.Producer, m *metrics, log *slog.Logger) error {
	// Batches under way finish after a signal, within shutdownGrace.
	batchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopWriters := p.start(batchCtx, pipelineDepth)
	defer func() { cancel(); stopWriters() }()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	defer stopAfter()

	total := gen.Total()
	q := &pipeline{p: p, files: files, m: m, prog: newProgress(total, log), logEach: cfg.BatchInterval >= time.Second, timed: gen.Timed()}
	if err := q.run(ctx, gen, cfg); err != nil {
		return err
	}
	if q.done < total {
		// A Job restarted on failure must not take half an election for
		// done: the exit status says whether it is complete.
		log.Info("stopped by signal", "published", q.done, "of", total)
		return fmt.Errorf("%w: %d of %d votes published; run again with the same settings to resume", errIncomplete, q.done, total)
	}
	m.done.Set(1)
	q.prog.update(q.done, 0, true)
	log.Info("election published", "votes", total, "resumed_after", p.skipped, "elapsed", q.prog.elapsed().Round(time.Millisecond))
	return nil
}

// pipeline is produce's batches under way, oldest first, with the vote
// buffers of those finished, which the next batches reuse.
type pipeline struct {
	p       *publisher
	files   *fileDrop
	m       *metrics
	prog    *progress
	logEach bool // log progress after every batch, not at most once a second
	timed   bool // the election has a night: progress shows its clock

	queue []*batch
	spare [][]vote.Vote
	done  int64 // votes up to here are acknowledged
}

// run generates and sends the batches, one per BATCH_INTERVAL with at most
// pipelineDepth under way, until the election is published or ctx ends;
// then it waits for those under way.
func (q *pipeline) run(ctx context.Context, gen *votegen.Generator, cfg config.Producer) error {
	next := time.Now()
	for n := 0; ctx.Err() == nil; n++ {
		votes := q.buffer(cfg.VotesPerBatch)
		first := gen.Seq()
		k := gen.Fill(votes)
		if k == 0 {
			break
		}
		if err := q.drain(pipelineDepth - 1); err != nil {
			return err
		}
		// Every vote of a batch is cast when it is sent, unless the
		// election has a night: then it carries its time of that night.
		if !gen.Timed() {
			now := time.Now().UnixMicro()
			for i := range votes[:k] {
				votes[i].Time = now
			}
		}
		q.queue = append(q.queue, q.p.send(n, first, votes[:k]))
		if cfg.BatchInterval == 0 || q.p.alreadyIn(first, k) {
			continue
		}
		next = pace(ctx, next, cfg.BatchInterval)
	}
	return q.drain(0)
}

// buffer returns a finished batch's votes to fill, or new ones.
func (q *pipeline) buffer(size int) []vote.Vote {
	if k := len(q.spare); k > 0 {
		votes := q.spare[k-1]
		q.spare = q.spare[:k-1]
		return votes
	}
	return make([]vote.Vote, size)
}

// drain finishes the oldest batches until at most left are under way.
func (q *pipeline) drain(left int) error {
	for len(q.queue) > left {
		if err := q.finish(); err != nil {
			return err
		}
	}
	return nil
}

// finish waits for the oldest batch, then drops its file and counts it.
func (q *pipeline) finish() error {
	b := q.queue[0]
	q.queue = q.queue[1:]
	<-b.done
	if b.err != nil {
		return fmt.Errorf("publish batch %d: %w", b.n, b.err)
	}
	q.files.write(b.first, b.votes)
	q.done = b.first + int64(len(b.votes))
	if b.sent > 0 {
		q.m.published.Add(float64(b.sent))
		q.m.batches.Inc()
		q.m.duration.Observe(time.Since(b.start).Seconds())
		if q.timed {
			q.prog.clock = time.UnixMicro(b.votes[len(b.votes)-1].Time)
		}
		q.prog.update(q.done, b.sent, q.logEach)
	}
	q.spare = append(q.spare, b.votes[:cap(b.votes)])
	return nil
}

// pace waits for the next batch's time, interval after next, or until ctx
// ends, and returns that time. Once behind, it starts again from now
// rather than bursting to catch up.
func pace(ctx context.Context, next time.Time, interval time.Duration) time.Time {
	next = next.Add(interval)
	wait := time.Until(next)
	if wait <= 0 {
		return time.Now()
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	return next
}

// parseSeed reads SEED, or draws one from crypto/rand for "random" (or
// empty): a new election each run. The seed is logged either way.
func parseSeed(s string) (uint64, error) {
	if s == "" || s == "random" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint64(b[:]) >> 1, nil
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("SEED: %q: must be a whole number from 0 to %d, or random", s, uint64(1<<64-1))
	}
	return seed, nil
}

type metrics struct {
	expected   prometheus.Gauge
	published  prometheus.Counter
	batches    prometheus.Counter
	duration   prometheus.Histogram
	done       prometheus.Gauge
	fileErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = httpserver.Namespace, "producer"
	m := &metrics{
		expected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "votes_expected",
			Help: "Votes in the whole election at this SCALE."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "votes_published_total",
			Help: "Votes of this election acknowledged by Kafka: those found in the topic at start plus those published since."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "batches_total",
			Help: "Batches published in this run."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "publish_duration_seconds",
			Help: "Time to publish one batch with every record acknowledged.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		done: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "done",
			Help: "1 once every vote of the election is published."}),
		fileErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "file_errors_total",
			Help: "JSON batch files that could not be written."}),
	}
	reg.MustRegister(m.expected, m.published, m.batches, m.duration, m.done, m.fileErrors)
	return m
}

// progress logs how much of the electorate is published, the rate and an
// ETA, at most once a second unless asked to.
type progress struct {
	total  int64
	start  time.Time
	last   time.Time
	sent   int64
	log    *slog.Logger
	sentAt int64
	clock  time.Time // the night's time of the last vote published, if timed
}

func newProgress(total int64, log *slog.Logger) *progress {
	now := time.Now()
	return &progress{total: total, start: now, last: now, log: log}
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

func (p *progress) update(done, sent int64, force bool) {
	p.sent += sent
	now := time.Now()
	if !force && now.Sub(p.last) < time.Second {
		return
	}
	rate := float64(p.sent-p.sentAt) / max(now.Sub(p.last).Seconds(), 1e-9)
	p.last, p.sentAt = now, p.sent
	eta := time.Duration(0)
	if rate > 0 {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second))
	}
	attrs := []any{"published", done, "of", p.total,
		"percent", fmt.Sprintf("%.1f", 100*float64(done)/float64(p.total)),
		"votes_per_sec", int64(rate), "eta", eta.Round(time.Second)}
	if !p.clock.IsZero() {
		// Eastern Standard Time, UTC-5 on 5 November 2024.
		attrs = append(attrs, "night_clock_et", p.clock.In(time.FixedZone("EST", -5*60*60)).Format("15:04"))
	}
	p.log.Info("progress", attrs...)
}

var (
	errNoPartitions = errors.New("votes topic has no partitions")
	errIncomplete   = errors.New("stopped before the election was complete")
)
