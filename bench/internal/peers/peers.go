// Package peers is `bench peers`: votestream's counter, Spark Structured
// Streaming and Kafka Streams counting the same topic, one after another,
// each alone and each SIGKILLed and restarted mid-count.
package peers

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// Config is `bench peers`: votestream's counter, Spark Structured
// Streaming and Kafka Streams counting the same topic, one after another.
type Config struct {
	bed.Config
	scale   float64
	broker  string // "kafka" (a one-node Apache Kafka) or "kfake"
	kill    bool
	runs    int
	threads int
}

func ParseConfig(args []string, stderr io.Writer) (Config, error) {
	c := Config{Config: bed.Config{Compress: "snappy"}}
	fs := flag.NewFlagSet("bench peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.Flags(fs)
	fs.Float64Var(&c.scale, "scale", 0.02, "SCALE of the election every peer counts")
	fs.StringVar(&c.broker, "broker", "kafka", "kafka: a one-node Apache Kafka from deploy/kafka/lib; kfake: the local broker (Spark's Kafka client cannot read its metadata)")
	fs.BoolVar(&c.kill, "kill", true, "also SIGKILL each peer mid-run, restart it on its state and check it still ends exact")
	fs.IntVar(&c.runs, "runs", 3, "rounds of the raw read and every peer alone, one after another; each row is the median round")
	fs.IntVar(&c.threads, "streams-threads", 2, "num.stream.threads of the Kafka Streams peer")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.broker != "kafka" && c.broker != "kfake" {
		return c, fmt.Errorf("-broker %q: want kafka or kfake", c.broker)
	}
	if c.runs < 1 {
		return c, fmt.Errorf("-runs %d: want at least 1", c.runs)
	}
	return c, nil
}

// bench is the bed the peers count on.
type bench struct{ *bed.Bed }

// peer is one counting application, started on a state of its own (group,
// checkpoint, state directory) that survives a SIGKILL and a restart.
type peer struct {
	key, label string
	launch     func(st *peerState) (*testbed.Process, error)
	ready      func(p *testbed.Process, st *peerState) error // it reads; fills st.addr
	totals     func(ctx context.Context, st *peerState) (counted, error)
}

type peerState struct {
	dir   string
	names bed.Names
	addr  string
}

// counted is what a peer has counted so far.
type counted struct {
	tally             vote.Tally
	records, unparsed int64
}

// peerResult is one peer's row: its run alone, then its run killed.
type peerResult struct {
	key, label string
	votes      int64
	readyAfter float64 // seconds from start until it reads
	exactAfter float64 // seconds from start until its totals are exact
	seconds    float64 // reading to exact: the rate's denominator
	cpu        float64 // CPU seconds of the peer (and its children) until exact
	rssMiB     float64
	exact      bool
	note       string

	killed     bool
	killExact  bool
	killAt     float64 // seconds after it read
	killedAt   int64   // votes counted when it was killed
	afterStart float64 // restart to exact
	killNote   string
}

func (r peerResult) Rate() float64 {
	if !r.exact || r.seconds <= 0 {
		return 0
	}
	return float64(r.votes) / r.seconds
}

func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	root, err := testbed.ModuleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "votestream-peers-")
	if err != nil {
		return err
	}
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	addr, stop, err := startPeersBroker(ctx, cfg, work)
	if err != nil {
		return err
	}
	defer stop()
	bd, err := bed.New(cfg.Config, addr, work, stderr)
	if err != nil {
		return err
	}
	b := &bench{bd}
	want, err := votegen.TrueTotals(votegen.Config{Seed: cfg.Seed, Scale: cfg.scale})
	if err != nil {
		return err
	}
	topic := b.NewNames("peers")
	if err := testbed.CreateTopics(ctx, kafkaio.Config{Brokers: strings.Split(addr, ","), Topic: topic.Topic, CheckpointTopic: topic.Ckpt,
		DLQTopic: topic.DLQ, Partitions: cfg.Partitions, ReplicationFactor: 1, DialTimeout: 10 * time.Second}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "peers: %s broker at %s, publishing %d votes to %s\n", cfg.broker, addr, want.Total(), topic.Topic)
	if _, err := b.Producer(ctx, topic, cfg.scale, "producer", ""); err != nil {
		return err
	}
	spark, err := testbed.FindSpark(ctx)
	if err != nil {
		return err
	}
	peers := []peer{b.votestreamPeer(topic), sparkPeer(spark, addr, topic.Topic),
		streamsPeer(root, addr, topic.Topic, cfg.threads)}
	ceiling, results, err := b.peerRounds(ctx, cfg.runs, topic.Topic, peers, &want)
	if err != nil {
		return err
	}
	if cfg.kill {
		for i, pe := range peers {
			b.killPeer(ctx, pe, &want, &results[i])
			fmt.Fprintf(stderr, "peers: %s killed after %.1f s at %d votes: exact after restart %v %s\n",
				pe.key, results[i].killAt, results[i].killedAt, results[i].killExact, results[i].killNote)
		}
	}
	printPeers(stdout, results, ceiling, cfg)
	return nil
}

// peerRounds runs, runs times over, kafka-go's raw read of the topic and
// then each peer alone, and returns the median round of each. Rounds
// alternate so that a broker still busy with the publish, or warming its
// JIT, weighs on every peer alike rather than on whichever runs first.
func (b *bench) peerRounds(ctx context.Context, runs int, topic string, peers []peer, want *vote.Tally) (bed.Row, []peerResult, error) {
	if err := b.warmBroker(ctx, topic); err != nil {
		return bed.Row{}, nil, err
	}
	var ceilings []bed.Row
	all := make([][]peerResult, len(peers))
	for round := 1; round <= runs; round++ {
		// What kafka-go reads from this broker when nothing is done with
		// it: the most any kafka-go consumer could count here.
		c, err := b.RawRead(ctx, topic, "fetch", "kafka-go raw read (kafka.Client.Fetch, discard)")
		if err != nil {
			return bed.Row{}, nil, err
		}
		ceilings = append(ceilings, c)
		fmt.Fprintf(b.Log, "peers: round %d: kafka-go raw read: %s votes/s, %.2f CPU µs/vote\n", round, bed.Human(c.Rate()), c.CPUPerVote())
		for i, pe := range peers {
			r := b.measurePeer(ctx, pe, want)
			all[i] = append(all[i], r)
			fmt.Fprintf(b.Log, "peers: round %d: %s alone: %s votes/s, exact %v %s\n", round, pe.key, bed.Human(r.Rate()), r.exact, r.note)
		}
	}
	results := make([]peerResult, len(peers))
	for i := range peers {
		results[i] = medianRun(all[i])
	}
	return bed.MedianRow(ceilings), results, nil
}

// warmBroker reads the topic with kafka-go until two reads in a row agree
// within 10% (at most maxWarmReads): a fresh broker's JVM serves fetches
// faster pass after pass as its JIT warms (1.36, 1.83 then 1.99 M votes/s
// in one run), which held the fastest peer back in the first rounds while
// the slower ones, which need a tenth of its fetch rate, hardly felt it.
func (b *bench) warmBroker(ctx context.Context, topic string) error {
	var rates []string
	last := 0.0
	for range maxWarmReads {
		r, err := b.RawRead(ctx, topic, "fetch", "warm-up read")
		if err != nil {
			return err
		}
		rates = append(rates, bed.Human(r.Rate()))
		if last > 0 && math.Abs(r.Rate()-last) <= 0.1*last {
			break
		}
		last = r.Rate()
	}
	fmt.Fprintf(b.Log, "peers: broker warmed by %d reads of the topic (%s votes/s)\n", len(rates), strings.Join(rates, ", "))
	return nil
}

const maxWarmReads = 6

// medianRun is the run of median rate, its note listing every run's rate;
// or, if any run was not exact, the first such: exactness must hold in
// every run.
func medianRun(runs []peerResult) peerResult {
	rates := make([]string, len(runs))
	for i, r := range runs {
		if !r.exact {
			return r
		}
		rates[i] = bed.Human(r.Rate())
	}
	m := bed.MedianRow(runs)
	if len(runs) > 1 {
		m.note = strings.TrimSpace(fmt.Sprintf("median of %d runs alone (%s votes/s) %s", len(runs), strings.Join(rates, ", "), m.note))
	}
	return m
}

// startPeersBroker starts the broker the peers share. Apache Kafka by
// default: kfake answers DescribeTopicPartitions in a way Spark's Kafka
// client (kafka-clients 3.9) fails on.
func startPeersBroker(ctx context.Context, cfg Config, work string) (string, func(), error) {
	if cfg.broker == "kafka" {
		dir := filepath.Join(work, "kafka")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
		k, err := testbed.StartKRaftNode(ctx, dir)
		if err != nil {
			return "", nil, err
		}
		return k.Addr, k.Stop, nil
	}
	p, err := bed.StartProc("broker", filepath.Join(cfg.Bin, "broker"), nil,
		[]string{"BROKER_ADDR=127.0.0.1:0", "BROKER_DATA_DIR=" + filepath.Join(work, "kfake")})
	if err != nil {
		return "", nil, err
	}
	addr, err := p.WaitOutput(regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second)
	if err != nil {
		p.Kill()
		return "", nil, err
	}
	return addr, func() { _ = p.Stop(time.Minute) }, nil
}

func (b *bench) newPeerState(key string) (*peerState, error) {
	st := &peerState{names: b.NewNames(key)}
	st.dir = filepath.Join(b.Work, st.names.Group)
	return st, os.MkdirAll(st.dir, 0o755)
}

// measurePeer runs a peer alone on the complete topic until its totals are
// exact (or wrong, or the timeout).
func (b *bench) measurePeer(ctx context.Context, pe peer, want *vote.Tally) peerResult {
	r := peerResult{key: pe.key, label: pe.label, votes: want.Total()}
	st, err := b.newPeerState(pe.key)
	if err != nil {
		r.note = err.Error()
		return r
	}
	p, readyAt, err := b.startPeer(pe, st)
	if err != nil {
		r.note = oneLine(err)
		return r
	}
	defer p.KillTree()
	r.readyAfter = readyAt.Sub(p.Started).Seconds()
	at, exact, note := b.waitPeerExact(ctx, pe, st, want)
	r.cpu, r.rssMiB = p.CPUNow(), p.PeakMiB()
	r.exact, r.note = exact, note
	r.exactAfter, r.seconds = at.Sub(p.Started).Seconds(), at.Sub(readyAt).Seconds()
	return r
}

func (b *bench) startPeer(pe peer, st *peerState) (*testbed.Process, time.Time, error) {
	p, err := pe.launch(st)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := pe.ready(p, st); err != nil {
		p.KillTree()
		return nil, time.Time{}, err
	}
	return p, time.Now(), nil
}

// killPeer starts a peer afresh, SIGKILLs it (and its children) halfway
// through its count, restarts it on the same state and waits for exact
// totals.
func (b *bench) killPeer(ctx context.Context, pe peer, want *vote.Tally, r *peerResult) {
	r.killed = true
	st, err := b.newPeerState(pe.key + "-kill")
	if err != nil {
		r.killNote = err.Error()
		return
	}
	p, _, err := b.startPeer(pe, st)
	if err != nil {
		r.killNote = oneLine(err)
		return
	}
	r.killAt, r.killedAt = waitHalfway(ctx, pe, st, want.Total(), r.seconds/2)
	p.KillTree()
	p, restartedAt, err := b.startPeer(pe, st)
	if err != nil {
		r.killNote = "restart: " + oneLine(err)
		return
	}
	defer p.KillTree()
	at, exact, note := b.waitPeerExact(ctx, pe, st, want)
	r.killExact, r.killNote = exact, note
	r.afterStart = at.Sub(restartedAt).Seconds()
	if r.killedAt >= want.Total() {
		r.killNote += " (it had finished before the kill)"
	}
}

// waitHalfway waits until the peer shows half the votes counted, or, for a
// peer that shows nothing until it is done (Spark's one micro-batch of the
// whole topic), until half the time its run alone took: the moment to kill
// it. It returns the seconds since it began reading and the votes shown.
func waitHalfway(ctx context.Context, pe peer, st *peerState, votes int64, half float64) (float64, int64) {
	start := time.Now()
	var shown int64
	for time.Since(start).Seconds() < max(half, 0.5) {
		if c, err := pe.totals(ctx, st); err == nil {
			if shown = c.tally.Total(); shown >= votes/2 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return time.Since(start).Seconds(), shown
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start).Seconds(), shown
}

// waitPeerExact polls a peer's totals until it has read every record,
// every 50 ms near the end and less often before (see bed.Pacer): a scrape of
// every cell costs the peer, and the bench parsing it, CPU the count
// shares. exact: every cell is the generator's, every record read once and
// parsed; otherwise note says what differs.
func (b *bench) waitPeerExact(ctx context.Context, pe peer, st *peerState, want *vote.Tally) (time.Time, bool, string) {
	ctx, cancel := context.WithTimeout(ctx, b.Cfg.Timeout)
	defer cancel()
	var last counted
	var lastErr error
	pace := bed.Pacer{Every: 50 * time.Millisecond}
	for {
		wait := pace.Every
		c, err := pe.totals(ctx, st)
		if err == nil {
			last = c
			if c.records >= want.Total() {
				at := time.Now()
				return at, verdict(c, want) == "", verdict(c, want)
			}
			wait = pace.Next(c.records, want.Total())
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return time.Now(), false, fmt.Sprintf("timed out at %d of %d votes (last error: %v)", last.tally.Total(), want.Total(), lastErr)
		case <-time.After(wait):
		}
	}
}

// verdict is "" when c is exactly want, else what is wrong.
func verdict(c counted, want *vote.Tally) string {
	switch d := c.tally.Diff(want, -1); {
	case c.records != want.Total():
		return fmt.Sprintf("read %d records, want %d", c.records, want.Total())
	case c.unparsed != 0:
		return fmt.Sprintf("%d records not parsed", c.unparsed)
	case len(d) > 0:
		return fmt.Sprintf("%d cells wrong", len(d))
	}
	return ""
}

func oneLine(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strconv.Quote(s)
}

// votestreamPeer is votestream's counter with its defaults, one replica.
func (b *bench) votestreamPeer(topic bed.Names) peer {
	return peer{
		key: "votestream", label: "votestream counter (checkpoints in Kafka)",
		launch: func(st *peerState) (*testbed.Process, error) {
			n := st.names
			n.Topic = topic.Topic
			return bed.StartTree("counter", filepath.Join(b.Cfg.Bin, "counter"), nil, b.Env(n))
		},
		ready: func(p *testbed.Process, st *peerState) (err error) {
			st.addr, err = b.CounterReady(p)
			return err
		},
		totals: func(ctx context.Context, st *peerState) (counted, error) {
			c, err := testbed.Scrape(ctx, st.addr)
			if err != nil {
				return counted{}, err
			}
			out := counted{tally: c.Tally, records: c.Tally.Total()}
			for _, n := range c.Rejected {
				out.records += n
				out.unparsed += n
			}
			return out, nil
		},
	}
}

// sparkPeer is deploy/spark/votes_kafka.py: the seed's aggregation over the
// Kafka source, as fast as it goes, state in its checkpoint location.
func sparkPeer(s testbed.Spark, brokers, topic string) peer {
	return peer{
		key: "spark", label: "Spark Structured Streaming (local[2], checkpoint)",
		launch: func(st *peerState) (*testbed.Process, error) {
			py, args := s.Job("votes_kafka.py", "--brokers", brokers, "--topic", topic,
				"--checkpoint", filepath.Join(st.dir, "checkpoint"), "--out", filepath.Join(st.dir, "totals.json"))
			return bed.StartTree("spark", py, args, s.Env())
		},
		ready: func(p *testbed.Process, _ *peerState) error {
			_, err := p.WaitOutput(regexp.MustCompile(`query started`), 5*time.Minute)
			return err
		},
		totals: func(_ context.Context, st *peerState) (counted, error) {
			t, tally, err := testbed.ReadSparkTotals(filepath.Join(st.dir, "totals.json"))
			return counted{tally: tally, records: t.Records, unparsed: t.Unparsed}, err
		},
	}
}

// streamsPeer is bench/peers: Kafka Streams, exactly_once_v2, a count per
// cell in a state store, served over HTTP.
func streamsPeer(root, brokers, topic string, threads int) peer {
	dir := filepath.Join(root, "bench", "peers")
	return peer{
		key: "kafka_streams", label: "Kafka Streams (exactly_once_v2, state store)",
		launch: func(st *peerState) (*testbed.Process, error) {
			if _, err := os.Stat(filepath.Join(dir, "lib", ".done")); err != nil {
				return nil, fmt.Errorf("the Kafka Streams peer is not built: run make peers-deps")
			}
			// The heap Spark's driver gets by default (spark.driver.memory):
			// left to itself the JVM takes a quarter of the machine's memory.
			return bed.StartTree("kafka streams", "java", []string{"-Xmx1g",
				"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
				"-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.producer.internals.Sender=error",
				"-cp", filepath.Join(dir, "target", "classes") + ":" + filepath.Join(dir, "lib", "*"),
				"io.votestream.peers.VoteCountStreams", brokers, topic, st.names.Group, filepath.Join(st.dir, "state"),
				"127.0.0.1:0", strconv.Itoa(threads)}, nil)
		},
		ready: func(p *testbed.Process, st *peerState) (err error) {
			if st.addr, err = p.WaitOutput(regexp.MustCompile(`listening on (\S+)`), 2*time.Minute); err != nil {
				return err
			}
			_, err = p.WaitOutput(regexp.MustCompile(`state RUNNING`), 5*time.Minute)
			return err
		},
		totals: func(ctx context.Context, st *peerState) (counted, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+st.addr+"/totals", nil)
			if err != nil {
				return counted{}, err
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return counted{}, err
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK {
				return counted{}, fmt.Errorf("GET /totals: %s %v", res.Status, err)
			}
			t, tally, err := testbed.ParseCellTotals(body)
			return counted{tally: tally, records: t.Records, unparsed: t.Unparsed}, err
		},
	}
}

// printPeers writes the table, the ratios against the goals, and as the
// very last line "peers: votestream=R spark=R kafka_streams=R" (votes/s).
func printPeers(w io.Writer, rs []peerResult, ceiling bed.Row, cfg Config) {
	fmt.Fprintln(w, "| peer | votes | votes/s | CPU µs/vote | peak RSS | reading after | exact after | exact | SIGKILL mid-run, restart: exact | restart to exact |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
	for _, r := range rs {
		cpu := "-"
		if r.cpu > 0 && r.exact {
			cpu = fmt.Sprintf("%.2f", 1e6*r.cpu/float64(r.votes))
		}
		killed, after := "not run", "-"
		if r.killed {
			killed, after = yesNo(r.killExact), fmt.Sprintf("%.1f s", r.afterStart)
			if r.killExact {
				killed = fmt.Sprintf("yes (killed %.1f s in, at %d votes)", r.killAt, r.killedAt)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f MiB | %.1f s | %.1f s | %s | %s | %s |\n",
			r.label, r.votes, bed.Human(r.Rate()), cpu, r.rssMiB, r.readyAfter, r.exactAfter, yesNo(r.exact), killed, after)
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.note != "" || (r.killed && r.killNote != "") {
			fmt.Fprintf(w, "- %s: %s %s\n", r.key, r.note, r.killNote)
		}
	}
	rate := map[string]float64{}
	for _, r := range rs {
		rate[r.key] = r.Rate()
	}
	fmt.Fprintf(w, "votestream against Spark: %s (goal 10x); against Kafka Streams: %s (goal 3x). Rates: reading to exact totals.\n",
		ratio(rate["votestream"], rate["spark"]), ratio(rate["votestream"], rate["kafka_streams"]))
	if c := ceiling.Rate(); c > 0 {
		fmt.Fprintf(w, "kafka-go's raw read of the same topic from this broker (kafka.Client.Fetch, records discarded): %s votes/s, %.2f CPU µs/vote; votestream's counter at %.2f of it; 10x Spark would be %s votes/s.\n",
			bed.Human(c), ceiling.CPUPerVote(), rate["votestream"]/c, bed.Human(10*rate["spark"]))
	}
	fmt.Fprintf(w, "broker: %s, SCALE=%g, %d partitions; machine: %s, %d CPUs, %s\n", cfg.broker, cfg.scale, cfg.Partitions, bed.CPUModel(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(w, peersLine(rate))
}

func peersLine(rate map[string]float64) string {
	return fmt.Sprintf("peers: votestream=%.0f spark=%.0f kafka_streams=%.0f", rate["votestream"], rate["spark"], rate["kafka_streams"])
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1fx", a/b)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
