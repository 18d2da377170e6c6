// Package pipeline is the bench's main table: the broker's raw-read
// ceiling, naive baselines, votestream's producer and counter, the whole
// pipeline end to end and the latency from a vote's timestamp to /metrics,
// with the viewers runs after each counter run.
package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/bench/internal/scale"
	"github.com/votestream/votestream/bench/internal/viewers"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/votegen"
)

// Config is the bench's flags.
type Config struct {
	bed.Config
	viewers   viewers.Config // the load of the viewers runs
	scale     float64        // end-to-end and latency runs (the seed's sample)
	rateScale float64        // throughput runs: larger, so start-up is a small part
	latency   bool
	naive     bool
	scaleRun  float64 // > 0: only the scale run, at this SCALE
	repeat    int     // ceiling and counter runs, alternated on the same topic
	onlyCount bool    // only the ceiling-versus-counter runs
	split     bool    // only the split runs
	pairs     int     // of the split runs
}

// ParseConfig reads the bench's flags; a value out of range is an error
// naming its flag.
func ParseConfig(args []string, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.Flags(fs)
	fs.Float64Var(&c.scale, "scale", 0.005, "SCALE of the end-to-end and latency runs")
	fs.Float64Var(&c.rateScale, "rate-scale", 0.02, "SCALE of the throughput runs (ceiling, baselines, producer, counter)")
	fs.BoolVar(&c.latency, "latency", true, "measure vote-to-/metrics latency at 100k votes/s")
	fs.BoolVar(&c.naive, "naive", true, "run the naive baselines")
	fs.StringVar(&c.Compress, "compression", "snappy", "KAFKA_COMPRESSION of votestream's producer and the naive one")
	fs.StringVar(&c.MemLimit, "gomemlimit", "", "GOMEMLIMIT of votestream's producer and counter (empty: their own default)")
	fs.Float64Var(&c.scaleRun, "scale-run", 0, "if > 0, run only the scale run: the election at this SCALE end to end, checked cell by cell, with peak RSS of each process and broker disk")
	fs.IntVar(&c.repeat, "repeat", 3, "runs of the raw-read ceiling and the counter, alternated on the same topic; the table reports the median")
	fs.BoolVar(&c.onlyCount, "counter-only", false, "publish one topic, then run only the ceiling and the counter on it (-repeat times each)")
	fs.StringVar(&c.ProfileDir, "counter-cpu-profile", "", "directory where each ceiling and counter run writes a CPU profile (ceiling-N.prof, counter-N.prof)")
	fs.IntVar(&c.viewers.Viewers, "viewers", 10000, "after each counter run, count again with this many live-page viewers on /events and /results polled at -poll-rate (0: skip)")
	fs.IntVar(&c.viewers.PollRate, "poll-rate", 5000, "/results requests per second, in total, during the viewers run (0: none)")
	fs.BoolVar(&c.split, "split", false, "run only the split bench: counting (ROLE=count) and serving (ROLE=serve) apart, pinned with taskset "+
		"(broker and counting on CPU 0, serving and the viewers' client on CPU 1), alone and under the -viewers load; beside them ROLE=hybrid and a stand-in server")
	fs.IntVar(&c.pairs, "split-pairs", 5, "pairs of the split bench; it reports the medians (the whole bench runs -repeat of them at most, last, for its split rows)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.pairs < 1 {
		return c, fmt.Errorf("-split-pairs %d: must be at least 1", c.pairs)
	}
	if c.repeat < 1 {
		return c, fmt.Errorf("-repeat %d: must be at least 1", c.repeat)
	}
	if c.viewers.PollRate < 0 {
		return c, fmt.Errorf("-poll-rate %d: must not be negative", c.viewers.PollRate)
	}
	return c, nil
}

// bench is the bed the table is measured on.
type bench struct {
	*bed.Bed
	cfg Config
}

// Run measures the table on a broker of its own and prints it to stdout,
// its progress to stderr.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return fmt.Errorf("-counter-cpu-profile: %w", err)
		}
	}
	bd, dataDir, stop, err := bed.Start(cfg.Config, stderr)
	if err != nil {
		return err
	}
	defer stop()
	if cfg.scaleRun > 0 {
		return scale.Run(ctx, bd, cfg.scaleRun, dataDir, stdout, stderr)
	}
	b := &bench{Bed: bd, cfg: cfg}
	if cfg.split {
		return b.split(ctx, stdout)
	}
	fmt.Fprintf(stderr, "bench: broker %s, throughput runs of %d votes, end-to-end of %d\n",
		b.Addr, bed.MustTotal(cfg.Seed, cfg.rateScale), bed.MustTotal(cfg.Seed, cfg.scale))
	naive := cfg.naive && !cfg.onlyCount
	prods, vsTopic, err := b.producers(ctx, naive)
	if err != nil {
		return err
	}
	reads, err := b.readers(ctx, vsTopic, naive)
	if err != nil {
		return err
	}
	rows := reads.rows
	if cfg.onlyCount {
		bed.PrintTable(stdout, rows)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, reads.pairs)
		reads.views.Print(stdout)
		bed.PrintMachine(stdout)
		return nil
	}
	rows = append(rows, prods...)
	e2eRow, err := b.endToEnd(ctx, cfg.scale)
	if err != nil {
		return err
	}
	e2eRow.Versus = fmt.Sprintf("%.2f%% of the seed's 273 s", 100*e2eRow.Wall/273)
	rows = append(rows, e2eRow)
	var lat string
	if cfg.latency {
		if lat, err = b.latency(ctx, cfg.scale); err != nil {
			return err
		}
	}
	// The split runs pin the broker and this process: they come last.
	if cfg.viewers.Viewers > 0 && runtime.NumCPU() >= 2 {
		runs, err := b.splitRuns(ctx, vsTopic, min(cfg.repeat, cfg.pairs))
		if err != nil {
			return err
		}
		rows = append(rows, runs.Rows()...)
	}
	brokerRSS := b.Broker.PeakMiB()
	disk := bed.DirSize(dataDir)
	bed.PrintTable(stdout, rows)
	fmt.Fprintf(stdout, "\n%s\n", reads.pairs)
	reads.views.Print(stdout)
	fmt.Fprintf(stdout, "broker (kfake): peak RSS %.0f MiB, disk %.1f MiB for %d votes in %d topics (%.0f bytes/vote)\n",
		brokerRSS, float64(disk)/(1<<20), b.TotalVotes, b.Topics(), float64(disk)/float64(max(b.TotalVotes, 1)))
	if lat != "" {
		fmt.Fprintln(stdout, lat)
	}
	bed.PrintMachine(stdout)
	return nil
}

// split publishes the throughput topic, then runs cfg.pairs pairs of the
// split bench on it and prints their table.
func (b *bench) split(ctx context.Context, stdout io.Writer) error {
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("-split pins to CPUs 0 and 1: this machine has %d", runtime.NumCPU())
	}
	topic := b.NewNames("produce")
	if _, err := b.Producer(ctx, topic, b.cfg.rateScale, "votestream producer", ""); err != nil {
		return err
	}
	runs, err := b.splitRuns(ctx, topic, b.cfg.pairs)
	if err != nil {
		return err
	}
	runs.Print(stdout)
	bed.PrintMachine(stdout)
	return nil
}

// splitRuns pins the broker to CPU 0 and this process to CPU 1, then runs
// pairs pairs of the split bench on topic.
func (b *bench) splitRuns(ctx context.Context, topic bed.Names, pairs int) (*viewers.SplitRuns, error) {
	if err := viewers.PinBench(b.Bed); err != nil {
		return nil, err
	}
	runs := &viewers.SplitRuns{Config: b.cfg.viewers}
	for i := range pairs {
		fmt.Fprintf(b.Log, "bench: split pair %d of %d\n", i+1, pairs)
		if err := runs.Run(ctx, b.Bed, topic, b.cfg.rateScale); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// producers publishes the throughput topic with votestream's producer
// (and, but in -counter-only, with the file drop on, and the naive
// baseline first): their rows, and the topic the readers then read.
func (b *bench) producers(ctx context.Context, naive bool) ([]bed.Row, bed.Names, error) {
	var naiveProd, prodFiles bed.Row
	var err error
	if naive {
		if naiveProd, err = b.naiveProducer(ctx, bed.MustTotal(b.Cfg.Seed, b.cfg.rateScale)); err != nil {
			return nil, bed.Names{}, err
		}
	}
	vsTopic := b.NewNames("produce")
	prod, err := b.Producer(ctx, vsTopic, b.cfg.rateScale, "votestream producer, file drop off", "")
	if err != nil || b.cfg.onlyCount {
		return []bed.Row{prod}, vsTopic, err
	}
	files := filepath.Join(b.Work, "vote_stream")
	if prodFiles, err = b.Producer(ctx, b.NewNames("produce-files"), b.cfg.rateScale, "votestream producer, file drop on", files); err != nil {
		return nil, bed.Names{}, err
	}
	os.RemoveAll(files)
	if !naive {
		return []bed.Row{prod, prodFiles}, vsTopic, nil
	}
	naiveProd.Versus = "1.00 (baseline)"
	prod.Versus = fmt.Sprintf("%.2fx naive", prod.Rate()/naiveProd.Rate())
	prodFiles.Versus = fmt.Sprintf("%.2fx naive", prodFiles.Rate()/naiveProd.Rate())
	return []bed.Row{naiveProd, prod, prodFiles}, vsTopic, nil
}

// readResults are the readers' rows and comparisons.
type readResults struct {
	rows  []bed.Row
	pairs pairRatios
	views viewers.Runs
}

// readers reads the votestream topic: the ceiling and votestream's counter
// alternately, cfg.repeat times each, so that load from elsewhere on a
// shared machine falls on both alike (each pair gives a wall-clock ratio
// and a CPU-per-vote ratio; the table reports the medians), each counter
// run followed by its count with viewers; then kafka.Reader and the naive
// counter.
func (b *bench) readers(ctx context.Context, topic bed.Names, naive bool) (readResults, error) {
	res := readResults{views: viewers.Runs{Config: b.cfg.viewers}}
	var ceilRuns, cntRuns []bed.Row
	for i := range b.cfg.repeat {
		var prof []string
		if b.Cfg.ProfileDir != "" {
			prof = []string{"-cpu-profile", filepath.Join(b.Cfg.ProfileDir, fmt.Sprintf("ceiling-%d.prof", i+1))}
		}
		c, err := b.RawRead(ctx, topic.Topic, "fetch", "raw read ceiling (kafka.Client.Fetch, discard)", prof...)
		if err != nil {
			return res, err
		}
		n, err := b.counter(ctx, topic, b.cfg.rateScale, i)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(b.Log, "bench: pair %d: ceiling %s votes/s %.3f CPU µs/vote, counter %s votes/s %.3f CPU µs/vote\n",
			i+1, bed.Human(c.Rate()), c.CPUPerVote(), bed.Human(n.Rate()), n.CPUPerVote())
		ceilRuns, cntRuns = append(ceilRuns, c), append(cntRuns, n)
		if b.cfg.viewers.Viewers > 0 {
			if err := res.views.Run(ctx, b.Bed, topic, b.cfg.rateScale); err != nil {
				return res, err
			}
		}
	}
	ceilFetch, cnt := bed.MedianRow(ceilRuns), bed.MedianRow(cntRuns)
	var ceilReader, naiveCnt bed.Row
	var err error
	if !b.cfg.onlyCount {
		if ceilReader, err = b.RawRead(ctx, topic.Topic, "reader", "raw read (kafka.Reader, discard)"); err != nil {
			return res, err
		}
	}
	if naive {
		if naiveCnt, err = b.naiveCounter(ctx, topic.Topic); err != nil {
			return res, err
		}
	}
	ceiling := max(ceilFetch.Rate(), ceilReader.Rate())
	for _, r := range []*bed.Row{&ceilFetch, &ceilReader, &naiveCnt} {
		if r.Name != "" {
			r.Versus = fmt.Sprintf("%.2f of ceiling", r.Rate()/ceiling)
			res.rows = append(res.rows, *r)
		}
	}
	res.pairs = comparePairs(ceilRuns, cntRuns)
	cnt.Versus = fmt.Sprintf("%.2f of ceiling", res.pairs.wall)
	if b.cfg.repeat > 1 {
		cnt.Versus += fmt.Sprintf(" (median of %d)", b.cfg.repeat)
	}
	res.rows = append(res.rows, cnt)
	if b.cfg.viewers.Viewers > 0 {
		res.rows = append(res.rows, res.views.Rows()...)
	}
	return res, nil
}

func (b *bench) naiveProducer(ctx context.Context, votes int64) (bed.Row, error) {
	n := b.NewNames("naive")
	if err := b.CreateTopics(ctx, n); err != nil {
		return bed.Row{}, err
	}
	b.TotalVotes += votes
	return b.Worker(ctx, "naive producer (uuid + encoding/json + kafka.Writer)", "naive-produce",
		"-brokers", b.Addr, "-topic", n.Topic, "-votes", strconv.FormatInt(votes, 10), "-compression", b.Cfg.Compress)
}

func (b *bench) naiveCounter(ctx context.Context, topic string) (bed.Row, error) {
	return b.Worker(ctx, "naive counter (kafka.Reader + encoding/json)", "naive-count", "-brokers", b.Addr, "-topic", topic, "-mode", "reader")
}

// counter counts a topic that is already complete: its rate is over the
// time from owning the partitions to showing every vote, checkpointed, in
// /metrics.
func (b *bench) counter(ctx context.Context, topic bed.Names, scale float64, run int) (bed.Row, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return bed.Row{}, err
	}
	n := b.NewNames("count")
	n.Topic = topic.Topic
	var extra []string
	if b.Cfg.ProfileDir != "" {
		extra = append(extra, "CPU_PROFILE="+filepath.Join(b.Cfg.ProfileDir, fmt.Sprintf("counter-%d.prof", run+1)))
	}
	p, addr, ready, err := b.StartCounter(n, extra...)
	if err != nil {
		return bed.Row{}, err
	}
	done, err := b.WaitExact(ctx, addr, &want, true)
	if err != nil {
		p.Kill()
		return bed.Row{}, err
	}
	r := bed.Row{Name: "votestream counter (checkpoints on)", Votes: want.Total(), Seconds: done.Sub(ready).Seconds(),
		RSSMiB: p.PeakMiB(), Wall: done.Sub(p.Started).Seconds()}
	err = bed.Finished(p, p.Stop(30*time.Second))
	r.CPU = p.CPUSeconds()
	return r, err
}

// endToEnd runs a counter, waits until it owns its partitions, then starts
// the producer: the time is from the producer's start to every vote shown,
// exactly, in /metrics.
func (b *bench) endToEnd(ctx context.Context, scale float64) (bed.Row, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return bed.Row{}, err
	}
	n := b.NewNames("e2e")
	c, addr, _, err := b.StartCounter(n)
	if err != nil {
		return bed.Row{}, err
	}
	defer c.Stop(30 * time.Second)
	p, err := b.StartProducer(n, scale, "BATCH_INTERVAL=0", "OUTPUT_DIR=")
	if err != nil {
		return bed.Row{}, err
	}
	done, err := b.WaitExact(ctx, addr, &want, false)
	if err != nil {
		p.Kill()
		return bed.Row{}, err
	}
	if err := bed.Finished(p, p.Wait(b.Cfg.Timeout)); err != nil {
		return bed.Row{}, err
	}
	b.TotalVotes += want.Total()
	secs := done.Sub(p.Started).Seconds()
	return bed.Row{Name: "end to end: generate, publish, count exactly", Votes: want.Total(), Seconds: secs, Wall: secs,
		RSSMiB: max(p.PeakMiB(), c.PeakMiB())}, nil
}

// latency publishes at 100k votes/s (10,000 votes every 100 ms) to a
// running counter and reads its vote latency histogram.
func (b *bench) latency(ctx context.Context, scale float64) (string, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.Cfg.Seed, Scale: scale})
	if err != nil {
		return "", err
	}
	n := b.NewNames("latency")
	c, addr, _, err := b.StartCounter(n)
	if err != nil {
		return "", err
	}
	defer c.Stop(30 * time.Second)
	p, err := b.StartProducer(n, scale, "VOTES_PER_BATCH=10000", "BATCH_INTERVAL=100ms", "OUTPUT_DIR=")
	if err != nil {
		return "", err
	}
	if _, err := b.WaitExact(ctx, addr, &want, false); err != nil {
		p.Kill()
		return "", err
	}
	if err := bed.Finished(p, p.Wait(b.Cfg.Timeout)); err != nil {
		return "", err
	}
	b.TotalVotes += want.Total()
	h, err := scrapeHistogram(ctx, addr, "votestream_counter_vote_latency_seconds")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("latency at 100k votes/s (%d votes, record timestamp to checkpointed in /metrics): p50 %.0f ms, p99 %.0f ms, max bucket %s",
		want.Total(), 1000*h.quantile(0.5), 1000*h.quantile(0.99), h.maxBucket()), nil
}

type histogram struct {
	count   float64
	buckets []struct{ le, n float64 } // cumulative
}

// quantile interpolates linearly inside the bucket holding q, as
// Prometheus' histogram_quantile does.
func (h histogram) quantile(q float64) float64 {
	rank := q * h.count
	prevLe, prevN := 0.0, 0.0
	for _, bk := range h.buckets {
		if bk.n >= rank {
			if math.IsInf(bk.le, 1) {
				return prevLe
			}
			if bk.n == prevN {
				return bk.le
			}
			return prevLe + (bk.le-prevLe)*(rank-prevN)/(bk.n-prevN)
		}
		prevLe, prevN = bk.le, bk.n
	}
	return math.NaN()
}

func (h histogram) maxBucket() string {
	prevN := 0.0
	last := ""
	for _, bk := range h.buckets {
		if bk.n > prevN {
			last = fmt.Sprintf("<= %g s", bk.le)
		}
		prevN = bk.n
	}
	return last
}

// scrapeHistogram reads the histogram name from the service at addr.
func scrapeHistogram(ctx context.Context, addr, name string) (histogram, error) {
	var h histogram
	fams, err := testbed.Metrics(ctx, addr, name)
	if err != nil {
		return h, err
	}
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		return h, fmt.Errorf("no %s in /metrics", name)
	}
	hist := f.GetMetric()[0].GetHistogram()
	h.count = float64(hist.GetSampleCount())
	for _, bk := range hist.GetBucket() {
		h.buckets = append(h.buckets, struct{ le, n float64 }{bk.GetUpperBound(), float64(bk.GetCumulativeCount())})
	}
	h.buckets = append(h.buckets, struct{ le, n float64 }{math.Inf(1), h.count})
	if h.count == 0 {
		return h, errors.New("latency histogram is empty")
	}
	return h, nil
}

// pairRatios is the counter against the ceiling, run after run: each pair
// ran back to back on the same topic.
type pairRatios struct {
	walls, cpus   []float64 // counter over ceiling, per pair
	wall, cpu     float64   // their medians
	ceilCPU, cCPU []float64 // CPU µs/vote of each run
}

func comparePairs(ceil, cnt []bed.Row) pairRatios {
	var p pairRatios
	for i := range ceil {
		p.walls = append(p.walls, cnt[i].Rate()/ceil[i].Rate())
		p.ceilCPU = append(p.ceilCPU, ceil[i].CPUPerVote())
		p.cCPU = append(p.cCPU, cnt[i].CPUPerVote())
		if ceil[i].CPUPerVote() > 0 {
			p.cpus = append(p.cpus, cnt[i].CPUPerVote()/ceil[i].CPUPerVote())
		}
	}
	p.wall = bed.Median(p.walls)
	if len(p.cpus) > 0 {
		p.cpu = bed.Median(p.cpus)
	}
	return p
}

func (p pairRatios) String() string {
	return fmt.Sprintf("counter against ceiling, %d alternating runs each on the same topic: median rate ratio %.2f (%s); "+
		"median CPU-per-vote ratio %.2f (%s; ceiling %s µs/vote, counter %s µs/vote)",
		len(p.walls), p.wall, bed.JoinRatios(p.walls), p.cpu, bed.JoinRatios(p.cpus), bed.JoinRatios(p.ceilCPU), bed.JoinRatios(p.cCPU))
}
