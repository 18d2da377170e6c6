package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// The fault suite (TestChaos*) runs short by default, so `make test` stays
// within CI's budget; CHAOS=full (`make chaos`) runs every scenario on the
// seed's whole sample with more injections. CHAOS_REPORT names a file that
// receives the figures table as well as stdout.

// chaosFull reports whether the suite runs in full.
func chaosFull() bool { return os.Getenv("CHAOS") == "full" }

// chaosScale is the election size: the seed's 1,146,500 votes in full, a
// tenth of it in short mode.
func chaosScale() float64 {
	if chaosFull() {
		return 0.005
	}
	return 0.0005
}

// pick returns short or full by mode.
func pick[T any](short, full T) T {
	if chaosFull() {
		return full
	}
	return short
}

// chaosRow is one line of the figures table.
type chaosRow struct {
	Fault              string
	Broker             string // what the services ran on: "kfake" when empty
	Injected           int
	Expected, Counted  int64
	CellsWrong         int
	LongestRecovery    time.Duration
	RecoveryMeaning    string
	ExtraNotes         string
	recoveryNotMeasure bool
	// doubles is what sampling every replica's /metrics saw of partitions
	// exported twice at once (nil: not sampled); the goal is never.
	doubles *doubleStats
}

// brokerName names a row's broker for the table: "kfake" (empty) or the
// Kafka version and node count.
func brokerName(cluster Bootstrapper) string {
	if k, ok := cluster.(*Kafka); ok {
		return fmt.Sprintf("%s x%d", strings.TrimPrefix(k.Version, "Apache "), len(k.Nodes))
	}
	return ""
}

var chaosTable struct {
	mu   sync.Mutex
	rows []chaosRow
}

func report(r chaosRow) {
	chaosTable.mu.Lock()
	defer chaosTable.mu.Unlock()
	chaosTable.rows = append(chaosTable.rows, r)
}

func TestMain(m *testing.M) {
	code := m.Run()
	chaosTable.mu.Lock()
	rows := chaosTable.rows
	chaosTable.mu.Unlock()
	if len(rows) > 0 {
		mode := "short"
		if chaosFull() {
			mode = "full"
		}
		var b strings.Builder
		writeTable(&b, mode, rows)
		fmt.Print(b.String())
		if path := os.Getenv("CHAOS_REPORT"); path != "" {
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "CHAOS_REPORT:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// writeTable writes the rows as a markdown table, readable on a terminal
// and ready for the README.
func writeTable(w io.Writer, mode string, rows []chaosRow) {
	fmt.Fprintf(w, "\nFault suite (%s mode, race detector %v, %s)\n\n", mode, raceEnabled, time.Now().UTC().Format("2006-01-02"))
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| fault\t broker\t times injected\t votes expected\t votes counted\t cells wrong\t longest recovery\t recovery is\t longest shown twice\t")
	fmt.Fprintln(tw, "| ---\t ---\t ---\t ---\t ---\t ---\t ---\t ---\t ---\t")
	for _, r := range rows {
		rec := r.LongestRecovery.Round(10 * time.Millisecond).String()
		if r.recoveryNotMeasure {
			rec = "n/a"
		}
		twice := "not sampled"
		if r.doubles != nil {
			twice = r.doubles.Longest.Round(10 * time.Millisecond).String()
		}
		broker := r.Broker
		if broker == "" {
			broker = "kfake"
		}
		fmt.Fprintf(tw, "| %s\t %s\t %d\t %d\t %d\t %d\t %s\t %s\t %s\t\n", r.Fault, broker, r.Injected, r.Expected, r.Counted, r.CellsWrong, rec, r.RecoveryMeaning, twice)
	}
	tw.Flush()
	for _, r := range rows {
		if r.ExtraNotes != "" {
			fmt.Fprintf(w, "- %s: %s\n", r.Fault, r.ExtraNotes)
		}
	}
	fmt.Fprintln(w)
}

// election is the seeded election a fault test publishes and checks.
type election struct {
	seed  uint64
	scale float64
	want  vote.Tally
}

func newElection(t *testing.T, seed uint64) election {
	t.Helper()
	e := election{seed: seed, scale: chaosScale()}
	var err error
	if e.want, err = votegen.TrueTotals(votegen.Config{Seed: seed, Scale: e.scale}); err != nil {
		t.Fatal(err)
	}
	return e
}

// producerVars paces the election so that publishing it takes about d:
// faults need votes flowing while they are injected.
func (e election) producerVars(d time.Duration, extra ...string) []string {
	total := e.want.Total()
	perBatch := perBatch()
	batches := (total + perBatch - 1) / perBatch
	interval := d / time.Duration(batches)
	return append([]string{
		"SEED=" + strconv.FormatUint(e.seed, 10),
		"SCALE=" + strconv.FormatFloat(e.scale, 'g', -1, 64),
		"VOTES_PER_BATCH=" + strconv.FormatInt(perBatch, 10),
		"BATCH_INTERVAL=" + interval.String(),
	}, extra...)
}

// perBatch is VOTES_PER_BATCH in fault tests.
func perBatch() int64 { return pick[int64](1000, 10000) }

// fleet is a set of counter replicas in one group, started, killed and
// restarted by name.
type fleet struct {
	t     *testing.T
	bin   string
	env   []string
	mu    sync.Mutex
	procs map[string]*Proc
	addrs map[string]string
	// paused replicas are left out of scrapes: a SIGSTOPped process accepts
	// connections but never answers.
	paused map[string]bool
	// hosts are the network namespaces replicas run in, by name; a replica
	// without one runs in the test's own.
	hosts map[string]*Host
}

func newFleet(t *testing.T, env Env, extra ...string) *fleet {
	return &fleet{
		t: t, bin: Binaries(t).Counter,
		env:   env.Vars(append([]string{"BATCH_MAX_WAIT=200ms", "GROUP_SESSION_TIMEOUT=2s", "GROUP_REBALANCE_TIMEOUT=4s"}, extra...)...),
		procs: map[string]*Proc{}, addrs: map[string]string{}, paused: map[string]bool{},
	}
}

// start runs replica name and waits for its metrics port.
func (f *fleet) start(name string) *Proc {
	f.t.Helper()
	env := append(slices.Clip(f.env), "REPLICA_ID="+name)
	var p *Proc
	if h := f.hosts[name]; h != nil {
		p = h.Start(f.t, "counter-"+name, f.bin, append(env, "HTTP_ADDR="+h.Addr+":9100")...)
	} else {
		p = Start(f.t, "counter-"+name, f.bin, env...)
	}
	a := p.MetricsAddr(f.t)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[name], f.addrs[name] = p, a
	return p
}

func (f *fleet) proc(name string) *Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[name]
}

// kill ends replica name with SIGKILL.
func (f *fleet) kill(name string) {
	f.mu.Lock()
	p := f.procs[name]
	delete(f.procs, name)
	delete(f.addrs, name)
	f.mu.Unlock()
	p.Kill()
}

// stop ends replica name with SIGTERM, as an orchestrator scaling down does.
func (f *fleet) stop(name string) {
	f.t.Helper()
	f.mu.Lock()
	p := f.procs[name]
	delete(f.procs, name)
	delete(f.addrs, name)
	f.mu.Unlock()
	if err := p.Stop(30 * time.Second); err != nil {
		f.t.Errorf("replica %s did not stop cleanly: %v", name, err)
	}
}

func (f *fleet) setPaused(name string, paused bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[name] = paused
}

func (f *fleet) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.procs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// live is the metrics addresses of the replicas that can answer.
func (f *fleet) live() []string { return slices.Collect(maps.Keys(f.liveProcs())) }

// liveProcs is live with each address's process: a replica started again
// on its host's address is another process.
func (f *fleet) liveProcs() map[string]*Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*Proc{}
	for n, a := range f.addrs {
		if !f.paused[n] {
			out[a] = f.procs[n]
		}
	}
	return out
}

// only is the metrics address of replica name, if it is live: for a wait
// that must see the others' partitions taken over by it alone.
func (f *fleet) only(name string) func() []string {
	return func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		if a, ok := f.addrs[name]; ok && !f.paused[name] {
			return []string{a}
		}
		return nil
	}
}

// stopAll stops every replica cleanly and checks each exits 0.
func (f *fleet) stopAll() {
	f.t.Helper()
	for _, n := range f.names() {
		f.stop(n)
	}
}

// partitionView is who owns what: for each partition, the replicas that
// export it and the offset each has checkpointed.
type partitionView map[int][]int64

// viewPartitions scrapes votestream_counter_partition_offset from addrs.
func viewPartitions(ctx context.Context, addrs []string) (partitionView, error) {
	v, _, err := viewOwners(ctx, addrs)
	return v, err
}

// viewOwners is viewPartitions that also says how many replicas own at
// least one partition.
func viewOwners(ctx context.Context, addrs []string) (v partitionView, owners int, err error) {
	v = partitionView{}
	for _, a := range addrs {
		families, err := testbed.Metrics(ctx, a, partitionMetric)
		if err != nil {
			return nil, 0, err
		}
		if len(families[partitionMetric].GetMetric()) > 0 {
			owners++
		}
		for _, m := range families[partitionMetric].GetMetric() {
			id, _ := strconv.Atoi(m.GetLabel()[0].GetValue())
			v[id] = append(v[id], int64(m.GetGauge().GetValue()))
		}
	}
	return v, owners, nil
}

// complete reports whether every partition is owned by exactly one replica.
func (v partitionView) complete(partitions int) bool {
	for p := range partitions {
		if len(v[p]) != 1 {
			return false
		}
	}
	return len(v) == partitions
}

// waitResumed waits until every partition is owned by exactly one of the
// replicas that replicas returns (f.live: every live one) and has moved
// past its offset in before (or reached the end, once the producer has
// published everything), and returns how long that took from since, and
// when each partition first did. With spread, the partitions must also be
// spread over as many of them as can have one, so the rebalance a scaling
// step causes has happened. It returns an error after timeout.
func waitResumed(replicas func() []string, partitions int, spread bool, before map[int]int64, ends func() map[int]int64, since time.Time, timeout time.Duration) (time.Duration, map[int]time.Duration, error) {
	deadline := time.Now().Add(timeout)
	each := map[int]time.Duration{}
	var last partitionView
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		live := replicas()
		v, owners, err := viewOwners(ctx, live)
		cancel()
		if err == nil && (!spread || owners == min(len(live), partitions)) {
			last = v
			end := ends()
			for p := range partitions {
				if _, done := each[p]; done || len(v[p]) != 1 {
					continue
				}
				if off := v[p][0]; off > before[p] || off >= end[p] {
					each[p] = time.Since(since)
				}
			}
			if v.complete(partitions) && len(each) == partitions {
				return time.Since(since), each, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, each, fmt.Errorf("partitions not all owned once and moving within %s: last view %v", timeout, last)
}

// offsetsNow returns every partition's checkpointed offset (the lowest if
// two replicas export it), or 0.
func offsetsNow(f *fleet) map[int]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[int]int64{}
	v, err := viewPartitions(ctx, f.live())
	if err != nil {
		return out
	}
	for p, offs := range v {
		out[p] = slices.Min(offs)
	}
	return out
}

// topicEnds returns a func reading the votes topic's end offsets.
func topicEnds(t *testing.T, env Env) func() map[int]int64 {
	return func() map[int]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A transport of its own: the default one would answer from
		// metadata cached before a leader moved.
		tr := &kafka.Transport{DialTimeout: 3 * time.Second}
		defer tr.CloseIdleConnections()
		c := &kafka.Client{Addr: kafka.TCP(strings.Split(env.Brokers, ",")...), Timeout: 5 * time.Second, Transport: tr}
		reqs := make([]kafka.OffsetRequest, env.Partitions)
		for p := range reqs {
			reqs[p] = kafka.LastOffsetOf(p)
		}
		res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{env.Topic: reqs}})
		out := map[int]int64{}
		if err != nil {
			for p := range env.Partitions {
				out[p] = math.MaxInt64
			}
			return out
		}
		for _, p := range res.Topics[env.Topic] {
			out[p.Partition] = p.LastOffset
		}
		return out
	}
}

// settle waits until the live replicas own every partition once and have
// counted want votes, unchanged for settle; unlike WaitCounted it returns
// the last counts on timeout, so the figures table has a row either way.
func settle(f *fleet, partitions int, want int64, timeout time.Duration) (*testbed.Counts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var (
		last  *testbed.Counts
		since time.Time
		err   error
	)
	for {
		var c *testbed.Counts
		var v partitionView
		c, v, err = scrapeAll(ctx, f.live())
		if err == nil {
			switch {
			case err != nil:
			case c.Tally.Total() == want && v.complete(partitions):
				if since.IsZero() || last.Tally != c.Tally {
					since = time.Now()
				}
				if time.Since(since) >= 2*time.Second {
					return c, nil
				}
			default:
				since = time.Time{}
			}
			last = c
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = &testbed.Counts{Rejected: map[string]int64{}}
			}
			return last, fmt.Errorf("counters did not settle on %d votes over %d partitions within %s: last saw %d (last error: %v)",
				want, partitions, timeout, last.Tally.Total(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scrapeAll reads the counts and the partitions of every replica at addrs,
// bounded on its own: a replica that does not answer must not use a
// caller's whole timeout up in one poll. Generous: on a loaded machine a
// race-built replica takes seconds to write its whole /metrics.
func scrapeAll(ctx context.Context, addrs []string) (*testbed.Counts, partitionView, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := testbed.Sum(ctx, addrs)
	if err != nil {
		return nil, nil, err
	}
	v, err := viewPartitions(ctx, addrs)
	return c, v, err
}

// finish waits for the final totals, checks every cell and the rejected
// counts, and adds the test's row to the figures table.
func finish(t *testing.T, f *fleet, env Env, want *vote.Tally, row chaosRow, rejected map[string]int64) {
	t.Helper()
	got, err := settle(f, env.Partitions, want.Total(), pick(2*time.Minute, 5*time.Minute))
	if err != nil {
		t.Error(err)
	}
	row.Expected, row.Counted = want.Total(), got.Tally.Total()
	row.CellsWrong = len(got.Tally.Diff(want, -1))
	report(row)
	CheckTally(t, "counters vs generator", &got.Tally, want)
	for r := vote.ReasonEmpty; r < vote.NumReasons; r++ {
		if got.Rejected[r.String()] != rejected[r.String()] {
			t.Errorf("rejected %q: got %d, want %d", r, got.Rejected[r.String()], rejected[r.String()])
		}
	}
}

var (
	restoredRE = regexp.MustCompile(`msg="partitions restored".* took=(\S+)`)
	progressRE = regexp.MustCompile(`msg=progress .*published=(\d+)`)
)

// restoreTimes lists the "took" of every "partitions restored" line.
func restoreTimes(out string) []time.Duration {
	var ds []time.Duration
	for _, m := range restoredRE.FindAllStringSubmatch(out, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// published is the producer's last reported progress, or -1.
func published(p *Proc) int64 {
	ms := progressRE.FindAllStringSubmatch(p.Output(), -1)
	if len(ms) == 0 {
		return -1
	}
	n, _ := strconv.ParseInt(ms[len(ms)-1][1], 10, 64)
	return n
}

// waitPublished waits until the producer reports at least n votes published.
func waitPublished(t *testing.T, p *Proc, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for published(p) < n {
		if p.Exited() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("producer did not publish %d votes within %s\n%s", n, timeout, testbed.Tail(p.Output(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitProducer waits for the producer to publish everything and exit 0.
func waitProducer(t *testing.T, p *Proc) {
	t.Helper()
	if err := p.Wait(pick(3*time.Minute, 8*time.Minute)); err != nil {
		t.Fatalf("producer: %v\n%s", err, testbed.Tail(p.Output(), 30))
	}
	if !strings.Contains(p.Output(), `msg="election published"`) {
		t.Fatalf("producer exited without publishing the election\n%s", testbed.Tail(p.Output(), 30))
	}
}
