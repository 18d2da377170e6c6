package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/votestream/votestream/internal/rig"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

type benchConfig struct {
	bin        string  // directory with producer, counter, broker
	scale      float64 // end-to-end and latency runs (the seed's sample)
	rateScale  float64 // throughput runs: larger, so start-up is a small part
	seed       uint64
	partitions int
	latency    bool
	naive      bool
	timeout    time.Duration // bounds every wait
	keep       bool
	compress   string  // KAFKA_COMPRESSION of every producer, naive too
	scaleRun   float64 // > 0: only the scale run, at this SCALE
	memLimit   string  // GOMEMLIMIT of votestream's producer and counter, if set
	repeat     int     // ceiling and counter runs, alternated on the same topic
	onlyCount  bool    // only the ceiling-versus-counter runs
	profileDir string  // if set, each counter run writes its CPU profile here
	viewers    int     // > 0: also count with this many /events viewers and /results polled
	pollRate   int     // /results requests per second during the viewers run
}

func parseConfig(args []string, stderr io.Writer) (benchConfig, error) {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.bin, "bin", "bin", "directory holding the producer, counter and broker binaries")
	fs.Float64Var(&c.scale, "scale", 0.005, "SCALE of the end-to-end and latency runs")
	fs.Float64Var(&c.rateScale, "rate-scale", 0.02, "SCALE of the throughput runs (ceiling, baselines, producer, counter)")
	fs.Uint64Var(&c.seed, "seed", 20241105, "SEED of every election")
	fs.IntVar(&c.partitions, "partitions", 12, "partitions of every topic")
	fs.BoolVar(&c.latency, "latency", true, "measure vote-to-/metrics latency at 100k votes/s")
	fs.BoolVar(&c.naive, "naive", true, "run the naive baselines")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on each step")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (broker data, logs)")
	fs.StringVar(&c.compress, "compression", "snappy", "KAFKA_COMPRESSION of votestream's producer and the naive one")
	fs.StringVar(&c.memLimit, "gomemlimit", "", "GOMEMLIMIT of votestream's producer and counter (empty: their own default)")
	fs.Float64Var(&c.scaleRun, "scale-run", 0, "if > 0, run only the scale run: the election at this SCALE end to end, checked cell by cell, with peak RSS of each process and broker disk")
	fs.IntVar(&c.repeat, "repeat", 3, "runs of the raw-read ceiling and the counter, alternated on the same topic; the table reports the median")
	fs.BoolVar(&c.onlyCount, "counter-only", false, "publish one topic, then run only the ceiling and the counter on it (-repeat times each)")
	fs.StringVar(&c.profileDir, "counter-cpu-profile", "", "directory where each ceiling and counter run writes a CPU profile (ceiling-N.prof, counter-N.prof)")
	fs.IntVar(&c.viewers, "viewers", 10000, "after each counter run, count again with this many live-page viewers on /events and /results polled at -poll-rate (0: skip)")
	fs.IntVar(&c.pollRate, "poll-rate", 5000, "/results requests per second, in total, during the viewers run (0: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.repeat < 1 {
		return c, fmt.Errorf("-repeat %d: must be at least 1", c.repeat)
	}
	if c.pollRate < 0 {
		return c, fmt.Errorf("-poll-rate %d: must not be negative", c.pollRate)
	}
	return c, nil
}

type row struct {
	name    string
	votes   int64
	seconds float64 // the rate's denominator: the measured stage's own time
	versus  string  // ratio to the ceiling or the baseline
	rssMiB  float64
	wall    float64 // process start to done
	cpu     float64 // CPU seconds of the process, start to exit
}

func (r row) rate() float64 {
	if r.seconds <= 0 {
		return 0
	}
	return float64(r.votes) / r.seconds
}

type bench struct {
	cfg    benchConfig
	self   string
	work   string
	broker *rig.Process
	addr   string
	client *kafkaio.Client
	log    io.Writer
	n      int

	totalVotes int64         // votes written to the broker, for bytes per vote
	poll       time.Duration // waitExact's period; 0 is 20 ms
}

func (b *bench) pollEvery() time.Duration {
	if b.poll > 0 {
		return b.poll
	}
	return 20 * time.Millisecond
}

// names is one run's topics and group, unique in the broker.
type names struct{ topic, ckpt, dlq, group string }

func (b *bench) newNames(what string) names {
	b.n++
	var r [3]byte
	_, _ = rand.Read(r[:])
	id := fmt.Sprintf("%s-%d-%s", what, b.n, hex.EncodeToString(r[:]))
	return names{"votes-" + id, "ckpt-" + id, "dlq-" + id, "group-" + id}
}

func (b *bench) env(n names, extra ...string) []string {
	if b.cfg.memLimit != "" {
		extra = append(extra, "GOMEMLIMIT="+b.cfg.memLimit)
	}
	return append([]string{
		"KAFKA_BROKERS=" + b.addr, "KAFKA_TOPIC=" + n.topic, "KAFKA_CHECKPOINT_TOPIC=" + n.ckpt,
		"KAFKA_DLQ_TOPIC=" + n.dlq, "GROUP_ID=" + n.group, "KAFKA_PARTITIONS=" + strconv.Itoa(b.cfg.partitions),
		"HTTP_ADDR=127.0.0.1:0", "REPLICA_ID=bench", "KAFKA_COMPRESSION=" + b.cfg.compress,
	}, extra...)
}

func (b *bench) createTopics(ctx context.Context, n names) error {
	k := config.Kafka{Brokers: []string{b.addr}, Topic: n.topic, CheckpointTopic: n.ckpt, DLQTopic: n.dlq, Partitions: b.cfg.partitions,
		ReplicationFactor: 1, CreateTopics: true, DialTimeout: 10 * time.Second}
	c, err := kafkaio.New(k, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.EnsureTopics(ctx, kafkaio.Topics(k))
	return err
}

func orchestrate(ctx context.Context, cfg benchConfig, stdout, stderr io.Writer) error {
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return fmt.Errorf("-counter-cpu-profile: %w", err)
		}
	}
	b, dataDir, stop, err := startBench(cfg, stderr)
	if err != nil {
		return err
	}
	defer stop()
	if cfg.scaleRun > 0 {
		return b.scaleRun(ctx, dataDir, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bench: broker %s, throughput runs of %d votes, end-to-end of %d\n",
		b.addr, mustTotal(cfg.seed, cfg.rateScale), mustTotal(cfg.seed, cfg.scale))
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
		printTable(stdout, rows)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, reads.pairs)
		reads.views.print(stdout)
		printMachine(stdout)
		return nil
	}
	rows = append(rows, prods...)
	e2eRow, err := b.endToEnd(ctx, cfg.scale)
	if err != nil {
		return err
	}
	e2eRow.versus = fmt.Sprintf("%.2f%% of the seed's 273 s", 100*e2eRow.wall/273)
	rows = append(rows, e2eRow)
	var lat string
	if cfg.latency {
		if lat, err = b.latency(ctx, cfg.scale); err != nil {
			return err
		}
	}
	brokerRSS := b.broker.PeakMiB()
	disk := dirSize(dataDir)
	printTable(stdout, rows)
	fmt.Fprintf(stdout, "\n%s\n", reads.pairs)
	reads.views.print(stdout)
	fmt.Fprintf(stdout, "broker (kfake): peak RSS %.0f MiB, disk %.1f MiB for %d votes in %d topics (%.0f bytes/vote)\n",
		brokerRSS, float64(disk)/(1<<20), b.totalVotes, b.n, float64(disk)/float64(max(b.totalVotes, 1)))
	if lat != "" {
		fmt.Fprintln(stdout, lat)
	}
	printMachine(stdout)
	return nil
}

func printMachine(w io.Writer) {
	fmt.Fprintf(w, "machine: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// startBench checks the binaries, makes the work directory and starts the
// broker, with its data on disk (dataDir) so its disk use can be reported;
// stop stops the broker and removes what -keep does not keep.
func startBench(cfg benchConfig, stderr io.Writer) (b *bench, dataDir string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", nil, err
	}
	for _, name := range []string{"producer", "counter", "broker"} {
		if _, err := os.Stat(filepath.Join(cfg.bin, name)); err != nil {
			return nil, "", nil, fmt.Errorf("binary %s: %w (run make build)", name, err)
		}
	}
	work, err := os.MkdirTemp("", "votestream-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	if !cfg.keep {
		stops = append(stops, func() { os.RemoveAll(work) })
	}
	b = &bench{cfg: cfg, self: self, work: work, log: stderr}
	dataDir = filepath.Join(work, "kfake")
	if b.broker, err = startProc("broker", filepath.Join(cfg.bin, "broker"), nil,
		[]string{"BROKER_ADDR=127.0.0.1:0", "BROKER_DATA_DIR=" + dataDir}); err != nil {
		stop()
		return nil, "", nil, err
	}
	stops = append(stops, func() {
		if err := finished(b.broker, b.broker.Stop(time.Minute)); err != nil {
			fmt.Fprintln(stderr, "broker:", err)
		}
	})
	if b.addr, err = b.broker.WaitOutput(regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second); err == nil {
		b.client, err = kafkaio.New(config.Kafka{Brokers: []string{b.addr}, ClientID: "votestream-bench", DialTimeout: 10 * time.Second},
			slog.New(slog.DiscardHandler))
	}
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	stops = append(stops, b.client.Close)
	return b, dataDir, stop, nil
}

// producers publishes the throughput topic with votestream's producer
// (and, but in -counter-only, with the file drop on, and the naive
// baseline first): their rows, and the topic the readers then read.
func (b *bench) producers(ctx context.Context, naive bool) ([]row, names, error) {
	var naiveProd, prodFiles row
	var err error
	if naive {
		if naiveProd, err = b.naiveProducer(ctx, mustTotal(b.cfg.seed, b.cfg.rateScale)); err != nil {
			return nil, names{}, err
		}
	}
	vsTopic := b.newNames("produce")
	prod, err := b.producer(ctx, vsTopic, b.cfg.rateScale, "votestream producer, file drop off", "")
	if err != nil || b.cfg.onlyCount {
		return []row{prod}, vsTopic, err
	}
	files := filepath.Join(b.work, "vote_stream")
	if prodFiles, err = b.producer(ctx, b.newNames("produce-files"), b.cfg.rateScale, "votestream producer, file drop on", files); err != nil {
		return nil, names{}, err
	}
	os.RemoveAll(files)
	if !naive {
		return []row{prod, prodFiles}, vsTopic, nil
	}
	naiveProd.versus = "1.00 (baseline)"
	prod.versus = fmt.Sprintf("%.2fx naive", prod.rate()/naiveProd.rate())
	prodFiles.versus = fmt.Sprintf("%.2fx naive", prodFiles.rate()/naiveProd.rate())
	return []row{naiveProd, prod, prodFiles}, vsTopic, nil
}

// readResults are the readers' rows and comparisons.
type readResults struct {
	rows  []row
	pairs pairRatios
	views viewerRuns
}

// readers reads the votestream topic: the ceiling and votestream's counter
// alternately, cfg.repeat times each, so that load from elsewhere on a
// shared machine falls on both alike (each pair gives a wall-clock ratio
// and a CPU-per-vote ratio; the table reports the medians), each counter
// run followed by its count with viewers; then kafka.Reader and the naive
// counter.
func (b *bench) readers(ctx context.Context, topic names, naive bool) (readResults, error) {
	var res readResults
	var ceilRuns, cntRuns []row
	for i := range b.cfg.repeat {
		var prof []string
		if b.cfg.profileDir != "" {
			prof = []string{"-cpu-profile", filepath.Join(b.cfg.profileDir, fmt.Sprintf("ceiling-%d.prof", i+1))}
		}
		c, err := b.rawRead(ctx, topic.topic, "fetch", "raw read ceiling (kafka.Client.Fetch, discard)", prof...)
		if err != nil {
			return res, err
		}
		n, err := b.counter(ctx, topic, b.cfg.rateScale, i)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(b.log, "bench: pair %d: ceiling %s votes/s %.3f CPU µs/vote, counter %s votes/s %.3f CPU µs/vote\n",
			i+1, human(c.rate()), c.cpuPerVote(), human(n.rate()), n.cpuPerVote())
		ceilRuns, cntRuns = append(ceilRuns, c), append(cntRuns, n)
		if b.cfg.viewers > 0 {
			if err := res.views.run(ctx, b, topic, b.cfg.rateScale); err != nil {
				return res, err
			}
		}
	}
	ceilFetch, cnt := medianRow(ceilRuns), medianRow(cntRuns)
	var ceilReader, naiveCnt row
	var err error
	if !b.cfg.onlyCount {
		if ceilReader, err = b.rawRead(ctx, topic.topic, "reader", "raw read (kafka.Reader, discard)"); err != nil {
			return res, err
		}
	}
	if naive {
		if naiveCnt, err = b.naiveCounter(ctx, topic.topic); err != nil {
			return res, err
		}
	}
	ceiling := max(ceilFetch.rate(), ceilReader.rate())
	for _, r := range []*row{&ceilFetch, &ceilReader, &naiveCnt} {
		if r.name != "" {
			r.versus = fmt.Sprintf("%.2f of ceiling", r.rate()/ceiling)
			res.rows = append(res.rows, *r)
		}
	}
	res.pairs = comparePairs(ceilRuns, cntRuns)
	cnt.versus = fmt.Sprintf("%.2f of ceiling", res.pairs.wall)
	if b.cfg.repeat > 1 {
		cnt.versus += fmt.Sprintf(" (median of %d)", b.cfg.repeat)
	}
	res.rows = append(res.rows, cnt)
	if b.cfg.viewers > 0 {
		res.rows = append(res.rows, res.views.rows()...)
	}
	return res, nil
}

func mustTotal(seed uint64, scale float64) int64 {
	g, err := votegen.New(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		panic(err)
	}
	return g.Total()
}

// worker runs one of this binary's sub-commands and reads its
// "records=N seconds=S" line.
func (b *bench) worker(ctx context.Context, name string, args ...string) (row, error) {
	p, err := startProc(name, b.self, args, nil)
	if err != nil {
		return row{}, err
	}
	if err := finished(p, p.Wait(b.cfg.timeout)); err != nil {
		return row{}, err
	}
	m := regexp.MustCompile(`records=(\d+) seconds=([\d.]+)`).FindStringSubmatch(p.Output())
	if m == nil {
		return row{}, fmt.Errorf("%s printed no result:\n%s", name, rig.Tail(p.Output(), 20))
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	s, _ := strconv.ParseFloat(m[2], 64)
	return row{name: name, votes: n, seconds: s, rssMiB: p.PeakMiB(), wall: p.Ended().Sub(p.Started).Seconds(), cpu: p.CPUSeconds()}, nil
}

func (b *bench) naiveProducer(ctx context.Context, votes int64) (row, error) {
	n := b.newNames("naive")
	if err := b.createTopics(ctx, n); err != nil {
		return row{}, err
	}
	b.totalVotes += votes
	return b.worker(ctx, "naive producer (uuid + encoding/json + kafka.Writer)", "naive-produce",
		"-brokers", b.addr, "-topic", n.topic, "-votes", strconv.FormatInt(votes, 10), "-compression", b.cfg.compress)
}

func (b *bench) rawRead(ctx context.Context, topic, mode, name string, extra ...string) (row, error) {
	return b.worker(ctx, name, append([]string{"raw-read", "-brokers", b.addr, "-topic", topic, "-mode", mode}, extra...)...)
}

func (b *bench) naiveCounter(ctx context.Context, topic string) (row, error) {
	return b.worker(ctx, "naive counter (kafka.Reader + encoding/json)", "naive-count", "-brokers", b.addr, "-topic", topic, "-mode", "reader")
}

var elapsedRE = regexp.MustCompile(`msg="election published".* elapsed=(\S+)`)

// producer publishes a whole election as fast as it can; its rate is over
// the time it logs from its first batch to the last acknowledgement.
func (b *bench) producer(ctx context.Context, n names, scale float64, name, outDir string) (row, error) {
	p, err := startProc("producer", filepath.Join(b.cfg.bin, "producer"), nil, b.env(n,
		"SEED="+strconv.FormatUint(b.cfg.seed, 10), "SCALE="+strconv.FormatFloat(scale, 'g', -1, 64),
		"BATCH_INTERVAL=0", "OUTPUT_DIR="+outDir))
	if err != nil {
		return row{}, err
	}
	if err := finished(p, p.Wait(b.cfg.timeout)); err != nil {
		return row{}, err
	}
	m := elapsedRE.FindStringSubmatch(p.Output())
	if m == nil {
		return row{}, fmt.Errorf("producer did not log its elapsed time:\n%s", rig.Tail(p.Output(), 20))
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return row{}, err
	}
	votes := mustTotal(b.cfg.seed, scale)
	b.totalVotes += votes
	return row{name: name, votes: votes, seconds: d.Seconds(), rssMiB: p.PeakMiB(), wall: p.Ended().Sub(p.Started).Seconds(), cpu: p.CPUSeconds()}, nil
}

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics".* addr=(\S+)`)

// startCounter starts a counter and waits until it owns its partitions.
func (b *bench) startCounter(n names, extra ...string) (*rig.Process, string, time.Time, error) {
	p, err := startProc("counter", filepath.Join(b.cfg.bin, "counter"), nil, b.env(n, extra...))
	if err != nil {
		return nil, "", time.Time{}, err
	}
	addr, err := p.WaitOutput(metricsAddrRE, 30*time.Second)
	if err != nil {
		p.Kill()
		return nil, "", time.Time{}, err
	}
	ready, err := b.waitReady(p, addr)
	if err != nil {
		p.Kill()
		return nil, "", time.Time{}, err
	}
	return p, addr, ready, nil
}

// counterReady waits for a started counter's HTTP address and for its
// /readyz to answer 200: it owns its partitions.
func (b *bench) counterReady(p *rig.Process) (string, error) {
	addr, err := p.WaitOutput(metricsAddrRE, 30*time.Second)
	if err != nil {
		return "", err
	}
	_, err = b.waitReady(p, addr)
	return addr, err
}

// waitReady waits until the counter at addr answers /readyz: it owns its
// partitions.
func (b *bench) waitReady(p *rig.Process, addr string) (time.Time, error) {
	deadline := time.Now().Add(b.cfg.timeout)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if p.Exited() {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("counter not ready within %s:\n%s", b.cfg.timeout, rig.Tail(p.Output(), 20))
}

// waitExact polls the counter's /metrics until it shows want exactly over
// every partition, and returns when it first did. A scrape of every cell
// costs the counter about a millisecond of CPU, so a count of a complete
// topic (steady) is polled as pacer says; a count that follows a producer
// speeds up as the producer does, so it is polled every pollEvery.
func (b *bench) waitExact(ctx context.Context, addr string, want *vote.Tally, steady bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	pace := pacer{every: b.pollEvery()}
	for {
		wait := pace.every
		c, err := rig.Scrape(ctx, addr)
		if err == nil && steady {
			wait = pace.next(c.Tally.Total(), want.Total())
		}
		if err == nil && c.Partitions == b.cfg.partitions && c.Tally.Total() >= want.Total() {
			at := time.Now()
			if d := c.Tally.Diff(want, 5); len(d) > 0 || c.Tally.Total() != want.Total() {
				return at, fmt.Errorf("counted %d votes, want %d; wrong cells: %+v", c.Tally.Total(), want.Total(), d)
			}
			for r, n := range c.Rejected {
				if n != 0 {
					return at, fmt.Errorf("rejected %d records as %s", n, r)
				}
			}
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("counter did not reach %d votes: %w (last error %v)", want.Total(), ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// pacer spaces the polls of a count of a complete topic, whose rate is
// steady: while the count is far from done it waits half the time the
// count so far says is left (at most a second), and near the end every
// every, so polls cost the counted process little while the time they
// report stays within every of the truth.
type pacer struct {
	every   time.Duration
	firstAt time.Time
	firstN  int64
}

// next is the wait before the next poll, given n of total counted now.
func (p *pacer) next(n, total int64) time.Duration {
	now := time.Now()
	switch {
	case n >= total:
	case p.firstAt.IsZero():
		p.firstAt, p.firstN = now, n
	case n > p.firstN:
		rate := float64(n-p.firstN) / now.Sub(p.firstAt).Seconds()
		left := time.Duration(float64(total-n) / rate * float64(time.Second))
		return min(max(p.every, left/2), time.Second)
	}
	return p.every
}

// counter counts a topic that is already complete: its rate is over the
// time from owning the partitions to showing every vote, checkpointed, in
// /metrics.
func (b *bench) counter(ctx context.Context, topic names, scale float64, run int) (row, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.cfg.seed, Scale: scale})
	if err != nil {
		return row{}, err
	}
	n := b.newNames("count")
	n.topic = topic.topic
	var extra []string
	if b.cfg.profileDir != "" {
		extra = append(extra, "CPU_PROFILE="+filepath.Join(b.cfg.profileDir, fmt.Sprintf("counter-%d.prof", run+1)))
	}
	p, addr, ready, err := b.startCounter(n, extra...)
	if err != nil {
		return row{}, err
	}
	done, err := b.waitExact(ctx, addr, &want, true)
	if err != nil {
		p.Kill()
		return row{}, err
	}
	r := row{name: "votestream counter (checkpoints on)", votes: want.Total(), seconds: done.Sub(ready).Seconds(),
		rssMiB: p.PeakMiB(), wall: done.Sub(p.Started).Seconds()}
	err = finished(p, p.Stop(30*time.Second))
	r.cpu = p.CPUSeconds()
	return r, err
}

// endToEnd runs a counter, waits until it owns its partitions, then starts
// the producer: the time is from the producer's start to every vote shown,
// exactly, in /metrics.
func (b *bench) endToEnd(ctx context.Context, scale float64) (row, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.cfg.seed, Scale: scale})
	if err != nil {
		return row{}, err
	}
	n := b.newNames("e2e")
	c, addr, _, err := b.startCounter(n)
	if err != nil {
		return row{}, err
	}
	defer c.Stop(30 * time.Second)
	p, err := startProc("producer", filepath.Join(b.cfg.bin, "producer"), nil, b.env(n,
		"SEED="+strconv.FormatUint(b.cfg.seed, 10), "SCALE="+strconv.FormatFloat(scale, 'g', -1, 64),
		"BATCH_INTERVAL=0", "OUTPUT_DIR="))
	if err != nil {
		return row{}, err
	}
	done, err := b.waitExact(ctx, addr, &want, false)
	if err != nil {
		p.Kill()
		return row{}, err
	}
	if err := finished(p, p.Wait(b.cfg.timeout)); err != nil {
		return row{}, err
	}
	b.totalVotes += want.Total()
	secs := done.Sub(p.Started).Seconds()
	return row{name: "end to end: generate, publish, count exactly", votes: want.Total(), seconds: secs, wall: secs,
		rssMiB: max(p.PeakMiB(), c.PeakMiB())}, nil
}

// latency publishes at 100k votes/s (10,000 votes every 100 ms) to a
// running counter and reads its vote latency histogram.
func (b *bench) latency(ctx context.Context, scale float64) (string, error) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: b.cfg.seed, Scale: scale})
	if err != nil {
		return "", err
	}
	n := b.newNames("latency")
	c, addr, _, err := b.startCounter(n)
	if err != nil {
		return "", err
	}
	defer c.Stop(30 * time.Second)
	p, err := startProc("producer", filepath.Join(b.cfg.bin, "producer"), nil, b.env(n,
		"SEED="+strconv.FormatUint(b.cfg.seed, 10), "SCALE="+strconv.FormatFloat(scale, 'g', -1, 64),
		"VOTES_PER_BATCH=10000", "BATCH_INTERVAL=100ms", "OUTPUT_DIR="))
	if err != nil {
		return "", err
	}
	if _, err := b.waitExact(ctx, addr, &want, false); err != nil {
		p.Kill()
		return "", err
	}
	if err := finished(p, p.Wait(b.cfg.timeout)); err != nil {
		return "", err
	}
	b.totalVotes += want.Total()
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

func scrapeHistogram(ctx context.Context, addr, name string) (histogram, error) {
	var h histogram
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return h, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
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

// cpuPerVote is the process's CPU microseconds per vote, 0 if unknown.
func (r row) cpuPerVote() float64 {
	if r.cpu <= 0 || r.votes == 0 {
		return 0
	}
	return 1e6 * r.cpu / float64(r.votes)
}

// medianRow is the run with the median rate (the lower middle one of an
// even number): a ceiling or counter row, or a peer's round.
func medianRow[R interface{ rate() float64 }](runs []R) R {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b R) int { return cmp.Compare(a.rate(), b.rate()) })
	return s[(len(s)-1)/2]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// pairRatios is the counter against the ceiling, run after run: each pair
// ran back to back on the same topic.
type pairRatios struct {
	walls, cpus   []float64 // counter over ceiling, per pair
	wall, cpu     float64   // their medians
	ceilCPU, cCPU []float64 // CPU µs/vote of each run
}

func comparePairs(ceil, cnt []row) pairRatios {
	var p pairRatios
	for i := range ceil {
		p.walls = append(p.walls, cnt[i].rate()/ceil[i].rate())
		p.ceilCPU = append(p.ceilCPU, ceil[i].cpuPerVote())
		p.cCPU = append(p.cCPU, cnt[i].cpuPerVote())
		if ceil[i].cpuPerVote() > 0 {
			p.cpus = append(p.cpus, cnt[i].cpuPerVote()/ceil[i].cpuPerVote())
		}
	}
	p.wall = median(p.walls)
	if len(p.cpus) > 0 {
		p.cpu = median(p.cpus)
	}
	return p
}

func (p pairRatios) String() string {
	return fmt.Sprintf("counter against ceiling, %d alternating runs each on the same topic: median rate ratio %.2f (%s); "+
		"median CPU-per-vote ratio %.2f (%s; ceiling %s µs/vote, counter %s µs/vote)",
		len(p.walls), p.wall, joinRatios(p.walls), p.cpu, joinRatios(p.cpus), joinRatios(p.ceilCPU), joinRatios(p.cCPU))
}

// joinRatios lists ratios to two decimals.
func joinRatios(r []float64) string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, ", ")
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| run | votes | votes/s | ratio | peak RSS | wall | CPU µs/vote |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- | ---: | ---: | ---: |")
	for _, r := range rows {
		cpu := "-"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.2f", 1e6*r.cpu/float64(r.votes))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f MiB | %.2f s | %s |\n", r.name, r.votes, human(r.rate()), r.versus, r.rssMiB, r.wall, cpu)
	}
}

func human(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2f M", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0f k", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
