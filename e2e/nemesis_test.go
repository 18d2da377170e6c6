package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/nemesis"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// The nemesis (docs/nemesis.md): three Apache Kafka nodes, each on a host
// of its own in a test network, the producer and up to five counters on
// theirs; a schedule of random, overlapping faults drawn from a seed; then
// everything healed and the count checked exact, with invariants sampled
// all along.

// TestNemesis runs the schedule of NEMESIS_SEED over NEMESIS_DURATION. The
// defaults are the short form `make test` runs: seed 2 for 2 minutes, whose
// schedule draws every kind of fault but a broker SIGTERM and the rolling
// restart (drawn from 5 minutes on). `make nemesis` runs 10 minutes.
func TestNemesis(t *testing.T) {
	seed, err := strconv.ParseUint(envOr("NEMESIS_SEED", "2"), 10, 64)
	if err != nil {
		t.Fatalf("NEMESIS_SEED: %v", err)
	}
	d, err := time.ParseDuration(envOr("NEMESIS_DURATION", "2m"))
	if err != nil || d < 30*time.Second {
		t.Fatalf("NEMESIS_DURATION %q: a duration of 30s or more (%v)", os.Getenv("NEMESIS_DURATION"), err)
	}
	runNemesis(t, nemesis.Draw(nemesisConfig(seed, d)))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// nemesisConfig is the schedule's shape: three brokers, three counters to
// begin with, up to five.
func nemesisConfig(seed uint64, d time.Duration) nemesis.Config {
	return nemesis.Config{Seed: seed, Duration: d, Brokers: 3, Counters: nemesis.Names(3), MaxScale: 5}
}

// nemesisRun is one schedule carried out.
type nemesisRun struct {
	t        *testing.T
	s        nemesis.Schedule
	net      *Net
	k        *Kafka
	env      Env
	el       election
	f        *fleet
	prodHost *Host
	prodVars []string
	serve    *Proc // a ROLE=serve replica, which no fault hits
	serveAt  string
	inv      *invariants
	outDir   string
	ends     func() map[int]int64
	viol     *violations
	start    time.Time // of the schedule

	mu       sync.Mutex
	prod     *Proc
	prodGone bool // killed by the nemesis, not started again yet
	exited   map[*Proc]bool
	done     map[int]string // fault index -> what happened, for the report
	recovery map[int]time.Duration
	recWG    sync.WaitGroup
	counted  chan struct{} // closed once the final check found every vote counted
}

// nemesisJudgeWithin is how fast a round's answers must all come for it
// to be judged, so that its answers were written close together.
const nemesisJudgeWithin = 300 * time.Millisecond

// nemesisMaxGap is the longest a running replica may leave the samples
// unanswered (each waits a second for it).
const nemesisMaxGap = 30 * time.Second

// nemesisScale sizes the election to the schedule: about a thousand votes
// a second, the seed's whole sample at most.
func nemesisScale(d time.Duration) float64 { return min(0.0005*d.Seconds()/120, 0.005) }

// runNemesis carries s out on a fresh cluster and checks the count.
func runNemesis(t *testing.T, s nemesis.Schedule) {
	t.Log("\n" + s.String())
	r := &nemesisRun{t: t, s: s, net: NewNet(t), viol: &violations{}, exited: map[*Proc]bool{}, done: map[int]string{},
		recovery: map[int]time.Duration{}, counted: make(chan struct{})}
	var brokerHosts []*Host
	for i := range s.Brokers {
		brokerHosts = append(brokerHosts, r.net.Host(fmt.Sprintf("kafka-%d", i+1)))
	}
	booted := time.Now()
	r.k = StartKafka(t, KafkaOptions{Nodes: s.Brokers, Hosts: brokerHosts})
	r.k.WaitHealthy(2 * time.Minute)
	t.Logf("cluster of %d nodes up in %s", s.Brokers, time.Since(booted).Round(100*time.Millisecond))
	r.env = NewEnv(t, r.k, 6)
	r.el = newElectionAt(t, s.Seed, nemesisScale(s.Duration))
	rf := "KAFKA_REPLICATION_FACTOR=3"
	// The counters are set like the producer, and call races; the serve
	// replica unlike it, and must withhold them (resultsinv_test.go).
	r.f = newFleet(t, r.env, rf, scaleVar(r.el.scale))
	r.f.hosts = map[string]*Host{}
	for _, name := range nemesis.Names(s.MaxScale) {
		r.f.hosts[name] = r.net.Host("counter-" + name)
	}
	for _, name := range s.Counters {
		r.f.start(name)
	}
	sh := r.net.Host("serve")
	r.serve = sh.Start(t, "serve", Binaries(t).Counter, append(slices.Clip(r.f.env), "ROLE=serve", "REPLICA_ID=serve", "HTTP_ADDR="+sh.Addr+":9100", scaleVar(r.el.scale/2))...)
	r.serveAt = r.serve.MetricsAddr(t)
	r.ends = topicEnds(t, r.env)
	r.outDir = t.TempDir()
	r.prodHost = r.net.Host("producer")
	r.prodVars = r.env.Vars(r.el.producerVars(s.Duration*8/10, "OUTPUT_DIR="+r.outDir, rf)...)
	r.startProducer()
	if _, _, err := waitResumed(r.f.live, r.env.Partitions, false, map[int]int64{}, r.ends, time.Now(), 2*time.Minute); err != nil {
		t.Fatalf("counting never got going: %v", err)
	}

	// Deferred, so that a check that fails the test still ends with the
	// report: the watchers stop, then the report is written.
	exact := false
	defer func() { r.report(exact) }()
	inv := newInvariants(&r.el.want, r.viol)
	inv.watchResults(votegen.Config{Seed: s.Seed, Scale: r.el.scale}, r.env.Partitions, r.serve)
	r.inv = inv
	w := watchFleet(r.f, 250*time.Millisecond, nemesisJudgeWithin, inv)
	stopAlive := r.watchAlive()
	defer func() {
		stopAlive()
		r.recWG.Wait()
		stats := w.Stop()
		inv.finish()
		t.Logf("invariants: %s; %s", inv, stats)
		if stats.Persisting > 0 {
			r.viol.add("a partition was shown by two replicas at once: %s", stats)
		}
		// A replica that answers no sample for long goes unchecked: its
		// invariants were not sampled, which is a finding too.
		if stats.Samples < 10 || stats.MaxGap > nemesisMaxGap {
			r.viol.add("the invariants went unsampled: %d samples, a replica unanswered for %s (over %s)", stats.Samples, stats.MaxGap.Round(time.Second), nemesisMaxGap)
		}
	}()
	r.start = time.Now()
	r.viol.start = r.start
	r.execute()
	t.Logf("+%s schedule done, everything healed", r.since())
	exact = r.check()
	if exact {
		close(r.counted)
	}
	r.f.stopAll()
}

// TestNemesisSeed1 replays the part of seed 1's first 2-minute schedule
// (drawn before rolling restarts were kept to 5 minutes or more) that left
// the counters without a working generation for six minutes, counting
// stalled at 18,666 of 114,650 votes and replicas exporting partitions
// they did not hold (docs/nemesis.md, Findings): every counter killed in
// turn and a fourth started alone while the brokers restart one by one and
// the producer is cut off. It runs with CHAOS=full (make chaos).
func TestNemesisSeed1(t *testing.T) {
	if !chaosFull() {
		t.Skip("runs with CHAOS=full (make chaos)")
	}
	s := nemesis.Schedule{Config: nemesisConfig(1, 90*time.Second), Faults: []nemesis.Fault{
		{At: 5 * time.Second, Kind: nemesis.RollingRestart},
		{At: 20 * time.Second, For: 18500 * time.Millisecond, Kind: nemesis.ProducerCut},
		{At: 21 * time.Second, For: 6200 * time.Millisecond, Kind: nemesis.CounterKill, Counters: []string{"c2", "c3"}},
		{At: 23 * time.Second, For: 7200 * time.Millisecond, Kind: nemesis.CounterKill, Counters: []string{"c1"}},
		{At: 24500 * time.Millisecond, Kind: nemesis.Scale, Started: []string{"c4"}, Scale: 4},
		{At: 38 * time.Second, For: 17100 * time.Millisecond, Kind: nemesis.CounterKill, Counters: []string{"c1", "c3"}},
	}}
	runNemesis(t, s)
}

// waitServed polls base's /results until it has counted want votes, or
// ctx ends.
func waitServed(ctx context.Context, base string, want int64) (results.Results, error) {
	for {
		res, err := webtest.GetResults(ctx, base)
		if err == nil && res.Counted == want {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newElectionAt is newElection at a scale of its own.
func newElectionAt(t *testing.T, seed uint64, scale float64) election {
	t.Helper()
	e := election{seed: seed, scale: scale}
	var err error
	if e.want, err = votegen.TrueTotals(votegen.Config{Seed: seed, Scale: scale}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (r *nemesisRun) since() time.Duration { return time.Since(r.start).Round(100 * time.Millisecond) }

// logf logs a line of the run's timeline.
func (r *nemesisRun) logf(format string, args ...any) {
	r.t.Logf("+%-7s %s", r.since(), fmt.Sprintf(format, args...))
}

func (r *nemesisRun) startProducer() {
	p := r.prodHost.Start(r.t, "producer", Binaries(r.t).Producer, r.prodVars...)
	r.mu.Lock()
	r.prod, r.prodGone = p, false
	r.mu.Unlock()
}

func (r *nemesisRun) producer() *Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prod
}

// producerDone reports whether the producer has published the whole
// election and exited.
func (r *nemesisRun) producerDone() bool {
	p := r.producer()
	return p.Exited() && strings.Contains(p.Output(), `msg="election published"`)
}

// watchAlive checks twice a second that the producer and every counter
// the nemesis did not kill or stop still run; the returned func stops it.
func (r *nemesisRun) watchAlive() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			r.checkAlive()
			select {
			case <-quit:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() { close(quit); <-done }
}

func (r *nemesisRun) checkAlive() {
	r.mu.Lock()
	p, gone := r.prod, r.prodGone
	r.mu.Unlock()
	if !gone && p.Exited() && !r.producerDone() {
		r.exitedOnce(p, "the producer")
	}
	for _, n := range r.f.names() {
		if p := r.f.proc(n); p != nil && p.Exited() {
			r.exitedOnce(p, "counter "+n)
		}
	}
	if r.serve.Exited() {
		r.exitedOnce(r.serve, "the serve replica")
	} else if r.inv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r.inv.readResults(ctx, r.serveAt, r.serve)
		cancel()
	}
}

func (r *nemesisRun) exitedOnce(p *Proc, what string) {
	r.mu.Lock()
	seen := r.exited[p]
	r.exited[p] = true
	r.mu.Unlock()
	if !seen {
		r.viol.add("%s exited (%v) though no fault stopped it:\n%s", what, p.Err(), testbed.Tail(p.Output(), 20))
	}
}

// execute carries the schedule out in three lanes, each in its own
// goroutine: the brokers' faults one after another, each waiting for the
// cluster to be whole again; the producer's; the counters', which overlap.
// A lane behind its schedule (a broker slow to catch up) runs its next
// fault late rather than never.
func (r *nemesisRun) execute() {
	var brokers, producer, counters []int
	for i, f := range r.s.Faults {
		switch {
		case f.Kind.Broker():
			brokers = append(brokers, i)
		case f.Kind.Producer():
			producer = append(producer, i)
		default:
			counters = append(counters, i)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.brokerLane(brokers) })
	wg.Go(func() { r.producerLane(producer) })
	wg.Go(func() { r.counterLane(counters) })
	wg.Wait()
}

// sleepUntil waits until at after the schedule's start.
func (r *nemesisRun) sleepUntil(at time.Duration) { time.Sleep(time.Until(r.start.Add(at))) }

func (r *nemesisRun) note(i int, what string) {
	r.mu.Lock()
	r.done[i] = what
	r.mu.Unlock()
	r.logf("#%d %s: %s", i+1, r.s.Faults[i].Kind, what)
}

func (r *nemesisRun) brokerLane(faults []int) {
	for _, i := range faults {
		f := r.s.Faults[i]
		r.sleepUntil(f.At)
		injected := time.Now()
		r.note(i, "injected: "+f.String())
		var n *KafkaNode
		if len(f.Brokers) > 0 {
			n = r.k.Node(f.Brokers[0])
		}
		healUntil := func() { time.Sleep(time.Until(injected.Add(f.For))) }
		switch f.Kind {
		case nemesis.BrokerKill:
			n.Kill()
			healUntil()
			n.Start()
		case nemesis.BrokerTerm:
			n.Stop()
			healUntil()
			n.Start()
		case nemesis.BrokerPause:
			n.Pause()
			healUntil()
			n.Resume()
		case nemesis.BrokerCut:
			n.Host.LinkDown()
			healUntil()
			n.Host.LinkUp()
		case nemesis.TwoBrokersDown:
			r.twoDown(i, f, injected)
		case nemesis.RollingRestart:
			r.rollingRestart(i)
		}
		r.healed(i)
		if d, err := r.k.Healthy(2 * time.Minute); err != nil {
			r.viol.add("#%d %s: cluster not whole again: %v", i+1, f.Kind, err)
		} else {
			r.logf("#%d %s: every ISR full %s after the heal", i+1, f.Kind, d.Round(100*time.Millisecond))
		}
	}
}

// twoDown stops two brokers with SIGTERM (controlled shutdowns, so the
// ISRs shrink to the one left, below min.insync.replicas=2) and checks,
// while both are down, that the votes topic accepts nothing: no partition's
// end moves. Both start again at the heal.
func (r *nemesisRun) twoDown(i int, f nemesis.Fault, injected time.Time) {
	a, b := r.k.Node(f.Brokers[0]), r.k.Node(f.Brokers[1])
	a.Stop()
	b.Stop()
	time.Sleep(time.Second)
	out := len(r.producer().Output())
	before, err := r.k.EndOffsets(context.Background(), r.env.Topic, r.env.Partitions)
	time.Sleep(time.Until(injected.Add(f.For)))
	after, err2 := r.k.EndOffsets(context.Background(), r.env.Topic, r.env.Partitions)
	refusals := strings.Count(r.producer().Output()[min(out, len(r.producer().Output())):], `msg="produce failed, retrying"`)
	switch {
	case err != nil || err2 != nil:
		r.note(i, fmt.Sprintf("the survivor's end offsets unreadable (%v, %v): refusal not checked", err, err2))
	default:
		for p, end := range before {
			if a, ok := after[p]; ok && a != end {
				r.viol.add("#%d two brokers down: votes/%d went from %d to %d: a produce was accepted below min.insync.replicas", i+1, p, end, a)
			}
		}
		r.note(i, fmt.Sprintf("no votes accepted while both were down (%d partitions read), %d produces refused and retried", len(before), refusals))
	}
	a.Start()
	b.Start()
}

// rollingRestart stops and starts every broker in turn, each back in
// every ISR before the next.
func (r *nemesisRun) rollingRestart(i int) {
	for _, n := range r.k.Nodes {
		n.Stop()
		n.Start()
		if _, err := r.k.Healthy(2 * time.Minute); err != nil {
			r.viol.add("#%d rolling restart: broker %d not back in sync: %v", i+1, n.ID, err)
		}
		r.logf("#%d rolling restart: broker %d restarted", i+1, n.ID)
	}
}

func (r *nemesisRun) producerLane(faults []int) {
	for _, i := range faults {
		f := r.s.Faults[i]
		r.sleepUntil(f.At)
		injected := time.Now()
		switch f.Kind {
		case nemesis.ProducerKill:
			if r.producerDone() {
				r.note(i, "skipped: the producer has published everything")
				continue
			}
			r.note(i, "injected: "+f.String())
			r.mu.Lock()
			r.prodGone = true
			r.mu.Unlock()
			r.producer().Kill()
			time.Sleep(time.Until(injected.Add(f.For)))
			r.startProducer()
		case nemesis.ProducerCut:
			r.note(i, "injected: "+f.String())
			r.prodHost.LinkDown()
			time.Sleep(time.Until(injected.Add(f.For)))
			r.prodHost.LinkUp()
		}
		r.healed(i)
	}
}

// counterEvent is a counter fault's injection or heal, at its planned time.
type counterEvent struct {
	at   time.Duration
	i    int
	heal bool
}

func (r *nemesisRun) counterLane(faults []int) {
	var events []counterEvent
	for _, i := range faults {
		f := r.s.Faults[i]
		events = append(events, counterEvent{at: f.At, i: i})
		if f.Kind != nemesis.Scale {
			events = append(events, counterEvent{at: f.At + f.For, i: i, heal: true})
		}
	}
	// Heals first at equal times: a counter healed is free for the next.
	slices.SortStableFunc(events, func(a, b counterEvent) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.heal != b.heal {
			if a.heal {
				return -1
			}
			return 1
		}
		return 0
	})
	cuts := map[int][]func(){}
	for _, e := range events {
		r.sleepUntil(e.at)
		f := r.s.Faults[e.i]
		if !e.heal {
			r.note(e.i, "injected: "+f.String())
		}
		switch {
		case f.Kind == nemesis.Scale:
			for _, c := range f.Stopped {
				r.f.stop(c)
			}
			for _, c := range f.Started {
				r.f.start(c)
			}
			r.healed(e.i)
		case f.Kind == nemesis.CounterKill && !e.heal:
			for _, c := range f.Counters {
				r.f.kill(c)
			}
		case f.Kind == nemesis.CounterKill:
			for _, c := range f.Counters {
				r.f.start(c)
			}
		case f.Kind == nemesis.CounterPause:
			sig := syscall.SIGSTOP
			if e.heal {
				sig = syscall.SIGCONT
			}
			for _, c := range f.Counters {
				if !e.heal {
					r.f.setPaused(c, true)
				}
				r.f.proc(c).Signal(sig)
				if e.heal {
					r.f.setPaused(c, false)
				}
			}
		case f.Kind == nemesis.CounterCut && !e.heal:
			for _, c := range f.Counters {
				for _, n := range r.k.Nodes {
					cuts[e.i] = append(cuts[e.i], r.net.Cut(r.f.hosts[c], n.Host))
				}
				r.inv.cutOff(r.f.proc(c))
			}
		case f.Kind == nemesis.CounterCut:
			for _, c := range f.Counters {
				r.inv.healing(r.f.proc(c))
			}
			for _, heal := range cuts[e.i] {
				heal()
			}
		}
		if e.heal {
			r.healed(e.i)
		}
	}
}

// healed notes the heal of fault i and measures, in the background, how
// long until every partition is owned once and counting again: moved past
// where it stood at the heal, or at the topic's end. Another fault may
// still hold counting up meanwhile; that time counts too.
func (r *nemesisRun) healed(i int) {
	at := time.Now()
	before := offsetsNow(r.f)
	r.logf("#%d %s: healed", i+1, r.s.Faults[i].Kind)
	r.recWG.Go(func() {
		// In steps, so that a wait still going when the final check has
		// proved every vote counted ends there: the counters are being
		// stopped, and nothing moves any more.
		for time.Since(at) < 3*time.Minute {
			d, _, err := waitResumed(r.f.live, r.env.Partitions, false, before, r.ends, at, 10*time.Second)
			if err == nil {
				r.mu.Lock()
				r.recovery[i] = d
				r.mu.Unlock()
				return
			}
			select {
			case <-r.counted:
				r.logf("#%d %s: not counting again before the final check, which found every vote counted", i+1, r.s.Faults[i].Kind)
				return
			default:
			}
		}
		r.viol.add("#%d %s: counting not going again within 3m of the heal", i+1, r.s.Faults[i].Kind)
	})
}

// check waits for the producer to publish everything and the counters to
// settle, then checks every cell, the topic read back and the JSON files.
func (r *nemesisRun) check() bool {
	t := r.t
	if _, err := r.k.Healthy(2 * time.Minute); err != nil {
		r.viol.add("after the schedule: %v", err)
	}
	waitProducer(t, r.producer())
	total := r.el.want.Total()
	exact := true
	got, err := settle(r.f, r.env.Partitions, total, 2*time.Minute)
	if err != nil {
		t.Error(err)
		exact = false
	}
	CheckTally(t, "counters vs generator", &got.Tally, &r.el.want)
	tally, repeats := readBack(t, r.env, total)
	CheckTally(t, "topic vs generator", &tally, &r.el.want)
	files, n, err := ReadVoteFiles(r.outDir)
	if err != nil {
		t.Errorf("vote files: %v", err)
		exact = false
	}
	CheckTally(t, "JSON files vs generator", &files, &r.el.want)
	if want := int((total + perBatch() - 1) / perBatch()); n != want {
		t.Errorf("%d JSON files, want %d", n, want)
		exact = false
	}
	for reason := vote.ReasonEmpty; reason < vote.NumReasons; reason++ {
		want := int64(0)
		if reason == vote.ReasonDuplicate {
			want = repeats
		}
		if g := got.Rejected[reason.String()]; g != want {
			t.Errorf("rejected %q: got %d, want %d (the topic repeats %d records)", reason, g, want, repeats)
			exact = false
		}
	}
	// The serve replica follows the checkpoints: it must show the whole
	// count too.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if res, err := waitServed(ctx, "http://"+r.serveAt, total); err != nil {
		t.Errorf("the serve replica's /results: %v (counted %d, want %d)", err, res.Counted, total)
		exact = false
	} else {
		r.checkResultsFinal(res)
	}
	exact = exact && len(got.Tally.Diff(&r.el.want, -1)) == 0 && len(tally.Diff(&r.el.want, -1)) == 0 && len(files.Diff(&r.el.want, -1)) == 0
	t.Logf("+%s checked: %d votes, %d records repeated by retries (rejected as duplicates)", r.since(), total, repeats)
	return exact
}

// report logs what the run did and found, ending with the summary line.
func (r *nemesisRun) report(exact bool) {
	t := r.t
	r.mu.Lock()
	defer r.mu.Unlock()
	perKind := map[nemesis.Kind]int{}
	executed := 0
	for i, what := range r.done {
		if !strings.HasPrefix(what, "skipped") {
			perKind[r.s.Faults[i].Kind]++
			executed++
		}
	}
	var kinds []string
	for k := range nemesis.NumKinds {
		if perKind[k] > 0 {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, perKind[k]))
		}
	}
	longest, by := time.Duration(0), -1
	for i, d := range r.recovery {
		if d > longest {
			longest, by = d, i
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "faults per kind: %s\n", strings.Join(kinds, " "))
	if by >= 0 {
		fmt.Fprintf(&b, "longest recovery (heal to every partition counting again): %s, after #%d %s\n", longest.Round(10*time.Millisecond), by+1, r.s.Faults[by])
	}
	vs := r.viol.all()
	for _, v := range vs {
		fmt.Fprintf(&b, "violation: %s\n", v)
		t.Errorf("nemesis seed %d: %s", r.s.Seed, v)
	}
	fmt.Fprintf(&b, "nemesis: seed=%d faults=%d exact=%v violations=%d", r.s.Seed, executed, exact, len(vs))
	t.Log("\n" + b.String())
	if !exact {
		t.Errorf("nemesis seed %d: not exact: replay with NEMESIS_SEED=%d NEMESIS_DURATION=%s", r.s.Seed, r.s.Seed, r.s.Duration)
	}
}
