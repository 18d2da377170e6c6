package e2e

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
)

// The network faults: every service runs in a network namespace of its own
// (or the test's), the broker listens on its host's address, and the test
// cuts links at the router between them while votes flow. Every replica's
// /metrics is sampled all along: no partition may be shown twice.

// netRig is a test network with the broker on a host of its own.
type netRig struct {
	net    *Net
	broker *Host
	env    Env
	vars   []string // the services' settings over the tests' defaults
	name   string   // the broker, for the chaos table ("" for kfake)
}

func newNetRig(t *testing.T) netRig {
	n := NewNet(t)
	bh := n.Host("broker")
	b := bh.StartBroker(t)
	return netRig{net: n, broker: bh, env: NewEnv(t, b, pick(6, 12))}
}

// newKafkaNetRig is a netRig whose broker host runs a three-node Apache
// Kafka (replication factor 3, min.insync.replicas 2): cutting a host
// off from it cuts it off from every node.
func newKafkaNetRig(t *testing.T) netRig {
	n := NewNet(t)
	bh := n.Host("kafka")
	k := StartKafka(t, KafkaOptions{Nodes: 3, Host: bh})
	k.WaitHealthy(2 * time.Minute)
	return netRig{net: n, broker: bh, env: NewEnv(t, k, pick(6, 12)), vars: []string{"KAFKA_REPLICATION_FACTOR=3"}, name: brokerName(k)}
}

// hostedFleet is a fleet whose replicas each run on a host of their own.
func (r netRig) hostedFleet(t *testing.T, names ...string) (*fleet, map[string]*Host) {
	f := newFleet(t, r.env, r.vars...)
	f.hosts = map[string]*Host{}
	for _, name := range names {
		f.hosts[name] = r.net.Host("counter-" + name)
	}
	return f, f.hosts
}

// netRun is an election under way on a netRig: two counters, a and b, on
// hosts of their own, the producer in the test's namespace, and the watch
// for partitions shown twice.
type netRun struct {
	el    election
	f     *fleet
	hosts map[string]*Host
	ends  func() map[int]int64
	prod  *Proc
	w     *doubleWatch
}

// startElection starts the counters, then the producer paced to take
// about pace.
func (r netRig) startElection(t *testing.T, seed uint64, pace time.Duration) netRun {
	el := newElection(t, seed)
	f, hosts := r.hostedFleet(t, "a", "b")
	f.start("a")
	f.start("b")
	ends := topicEnds(t, r.env)
	prod := Start(t, "producer", Binaries(t).Producer, r.env.Vars(el.producerVars(pace, append([]string{"OUTPUT_DIR="}, r.vars...)...)...)...)
	return netRun{el: el, f: f, hosts: hosts, ends: ends, prod: prod, w: watchDoubles(f)}
}

// waitUnder waits until the producer has published n votes and fails if
// it has finished already: the fault must come while votes flow.
func waitUnder(t *testing.T, prod *Proc, n int64, fault string) {
	t.Helper()
	waitPublished(t, prod, n, 2*time.Minute)
	if prod.Exited() {
		t.Fatalf("the producer finished before %s: pace it slower", fault)
	}
}

// cutFor is how long a link stays cut: past the 2s session timeout in short
// mode, the 30s in full.
func cutFor() time.Duration { return pick(6*time.Second, 30*time.Second) }

// checkDoubles fails the test if a partition was ever shown twice, or if
// the sampling had holes wide enough to miss a double: anywhere in the
// run, or, given handovers (the windows in which partitions change hands),
// in those, so that a replica slow to answer while nothing moves (a race
// build on a loaded machine, starting up) does not fail the test.
func checkDoubles(t *testing.T, s *doubleStats, handovers ...window) {
	t.Helper()
	t.Logf("%s; slowest answer %s by %s", s, s.Slowest.Round(time.Millisecond), s.SlowestBy)
	if s.Doubled > 0 {
		t.Errorf("a partition was exported by two replicas at once: %s", s)
	}
	gap := s.MaxGap
	if len(handovers) > 0 {
		gap = s.maxGapWithin(handovers)
	}
	if s.Samples < 10 || gap > time.Second {
		t.Errorf("%d samples, a replica unread for %s (longest anywhere: %s): the check proves little", s.Samples, gap, s.MaxGap)
	}
}

// TestChaosNetCounterCutOff cuts one counter off from the broker (a
// blackhole rule at the router, both ways) for longer than its session
// timeout while it stays reachable, and scraped, from the test; the other
// takes its partitions over. Then the link heals and it rejoins. Totals
// exact; no sample shows a partition on two replicas.
func TestChaosNetCounterCutOff(t *testing.T) { counterCutOff(t, newNetRig(t), 3101) }

// TestChaosNetKafkaCounterCutOff is TestChaosNetCounterCutOff on three
// Apache Kafka nodes: the cut replica must let go of its partitions before
// Kafka's group coordinator gives them to the other.
func TestChaosNetKafkaCounterCutOff(t *testing.T) { counterCutOff(t, newKafkaNetRig(t), 3111) }

func counterCutOff(t *testing.T, r netRig, seed uint64) {
	run := r.startElection(t, seed, pick(20*time.Second, 120*time.Second))
	el, f, hosts, ends, prod := run.el, run.f, run.hosts, run.ends, run.prod
	if _, _, err := waitResumed(f.live, r.env.Partitions, true, map[int]int64{}, ends, time.Now(), pick(time.Minute, 3*time.Minute)); err != nil {
		t.Fatal(err)
	}

	cuts := pick(1, 2)
	total := el.want.Total()
	var takeover, rejoin time.Duration
	var handovers []window // each cut, a second before it to both replicas counting again
	for i := range cuts {
		waitUnder(t, prod, total*int64(i+1)/int64(cuts+2), fmt.Sprintf("cut %d", i+1))
		before := offsetsNow(f)
		cut := time.Now()
		t.Logf("cut %d at %s", i+1, cut.Format("15:04:05.000"))
		heal := r.net.Cut(hosts["a"], r.broker)
		// b alone owns every partition and counts on; a, awake and
		// scraped, shows none (the doubles watcher checks that). Only b is
		// read here: a's last checkpoint, acknowledged just after the cut,
		// would otherwise count as its partitions moving on.
		d, _, err := waitResumed(f.only("b"), r.env.Partitions, false, before, ends, cut, time.Minute)
		if err != nil {
			heal()
			t.Fatalf("cut %d: b did not take over: %v", i+1, err)
		}
		takeover = max(takeover, d)
		time.Sleep(time.Until(cut.Add(cutFor())))
		healed := time.Now()
		heal()
		d, _, err = waitResumed(f.live, r.env.Partitions, true, offsetsNow(f), ends, healed, time.Minute)
		if err != nil {
			t.Fatalf("heal %d: a did not rejoin: %v", i+1, err)
		}
		rejoin = max(rejoin, d)
		handovers = append(handovers, window{cut.Add(-time.Second), time.Now()})
		t.Logf("cut %d (%s): b counting every partition %s after the cut; both replicas counting %s after the heal",
			i+1, cutFor(), takeover.Round(time.Millisecond), d.Round(time.Millisecond))
	}
	waitProducer(t, prod)
	stats := run.w.Stop()
	checkDoubles(t, stats, handovers...)
	finish(t, f, r.env, &el.want, chaosRow{Fault: "counter cut off from the broker (blackhole, " + cutFor().String() + ")", Broker: r.name, Injected: cuts,
		LongestRecovery: takeover, RecoveryMeaning: "cut to the other replica counting every partition", doubles: stats,
		ExtraNotes: fmt.Sprintf("heal to both replicas counting: %s; %s", rejoin.Round(time.Millisecond), stats)}, nil)
	f.stopAll()
}

// TestChaosNetProducerCutOff takes the producer's link down for a while
// mid-batch: it must neither exit nor lose nor duplicate a vote, and go on
// once the link is back. Read back, each partition holds every sequence
// once in order, but for retried runs (which the counters reject as
// duplicates).
func TestChaosNetProducerCutOff(t *testing.T) {
	bin := Binaries(t)
	r := newNetRig(t)
	el := newElection(t, 3102)
	f := newFleet(t, r.env)
	f.start("a")
	ph := r.net.Host("producer")
	prod := ph.Start(t, "producer", bin.Producer, r.env.Vars(el.producerVars(pick(20*time.Second, 60*time.Second), "OUTPUT_DIR=")...)...)
	w := watchDoubles(f)

	waitUnder(t, prod, el.want.Total()/3, "the cut")
	ph.LinkDown()
	at := published(prod)
	time.Sleep(cutFor())
	if prod.Exited() {
		ph.LinkUp()
		t.Fatalf("the producer exited while cut off:\n%s", testbed.Tail(prod.Output(), 20))
	}
	healed := time.Now()
	ph.LinkUp()
	waitPublished(t, prod, at+1, 2*time.Minute)
	recovery := time.Since(healed)
	t.Logf("cut off %s at %d published; publishing again %s after the link came back", cutFor(), at, recovery.Round(time.Millisecond))
	waitProducer(t, prod)

	retried := checkSequences(t, r.env)
	stats := w.Stop()
	checkDoubles(t, stats)
	finish(t, f, r.env, &el.want, chaosRow{Fault: "producer link down mid-batch (" + cutFor().String() + ")", Injected: 1,
		LongestRecovery: recovery, RecoveryMeaning: "link up to the producer publishing again", doubles: stats,
		ExtraNotes: fmt.Sprintf("topic read back: every sequence once per partition in order, %d records of retried runs (rejected as duplicates)", retried)},
		map[string]int64{"duplicate": retried})
	f.stopAll()
}

// checkSequences reads the votes topic back: each partition p must hold
// sequences p, p+P, p+2P, ... in order, each once, except for runs the
// producer wrote again after losing an acknowledgement (a sequence at or
// below the highest before it, seen already). It returns how many records
// such retries added.
func checkSequences(t *testing.T, env Env) int64 {
	t.Helper()
	var retried, n int64
	for p, recs := range readTopic(t, env.Brokers, env.Topic, env.Partitions, time.Minute) {
		seen := map[int64]bool{}
		next := int64(p)
		for i := range recs {
			seq := sequence(&recs[i])
			switch {
			case seq < 0:
				t.Fatalf("%d/%d: no sequence (key %q)", p, recs[i].Offset, recs[i].Key)
			case seq == next:
				seen[seq] = true
				next += int64(env.Partitions)
				n++
			case seen[seq]:
				retried++
			default:
				t.Fatalf("%d/%d: sequence %d, want %d: a vote skipped", p, recs[i].Offset, seq, next)
			}
		}
	}
	t.Logf("topic read back: %d votes in sequence, %d records of retried runs", n, retried)
	return retried
}

// TestChaosNetBrokerCutOff takes the broker's link down: every client is
// cut off at once. The producer and both counters must recover by
// themselves when it comes back.
func TestChaosNetBrokerCutOff(t *testing.T) {
	r := newNetRig(t)
	run := r.startElection(t, 3103, pick(20*time.Second, 90*time.Second))
	el, f, ends, prod := run.el, run.f, run.ends, run.prod
	waitUnder(t, prod, el.want.Total()/3, "the cut")
	before := offsetsNow(f)
	r.broker.LinkDown()
	time.Sleep(cutFor())
	healed := time.Now()
	r.broker.LinkUp()
	d, _, err := waitResumed(f.live, r.env.Partitions, false, before, ends, healed, 2*time.Minute)
	if err != nil {
		t.Fatalf("after the broker's link came back: %v", err)
	}
	t.Logf("broker cut off for %s: every partition counting again %s after the link came back", cutFor(), d.Round(time.Millisecond))
	waitProducer(t, prod)
	retried := checkSequences(t, r.env)
	stats := run.w.Stop()
	checkDoubles(t, stats)
	finish(t, f, r.env, &el.want, chaosRow{Fault: "broker link down, every client cut off (" + cutFor().String() + ")", Injected: 1,
		LongestRecovery: d, RecoveryMeaning: "link up to every partition counting again", doubles: stats,
		ExtraNotes: fmt.Sprintf("%d records of retried producer runs (rejected as duplicates); %s", retried, stats)},
		map[string]int64{"duplicate": retried})
	f.stopAll()
}

var joinedRE = regexp.MustCompile(`msg="generation joined"`)

// TestChaosNetFlakyLink drops a share of the packets between one counter
// and the broker, at random, for a while. The kernel here has no netem
// (CONFIG_NET_SCH_NETEM unset), so there is loss but no added delay:
// nftables' numgen drops at the router. Totals exact, nothing shown twice.
func TestChaosNetFlakyLink(t *testing.T) {
	r := newNetRig(t)
	run := r.startElection(t, 3104, pick(20*time.Second, 90*time.Second))
	el, f, hosts, ends, prod := run.el, run.f, run.hosts, run.ends, run.prod
	const loss = 20
	flaky := pick(8*time.Second, 30*time.Second)
	waitUnder(t, prod, el.want.Total()/4, "the link turned flaky")
	joinsBefore := len(joinedRE.FindAllString(f.proc("a").Output(), -1))
	clean := r.net.Lossy(hosts["a"], r.broker, loss)
	time.Sleep(flaky)
	clean()
	cleaned := time.Now()
	joins := len(joinedRE.FindAllString(f.proc("a").Output(), -1)) - joinsBefore
	d, _, err := waitResumed(f.live, r.env.Partitions, true, offsetsNow(f), ends, cleaned, 2*time.Minute)
	if err != nil {
		t.Fatalf("after the link was clean again: %v", err)
	}
	t.Logf("%d%% loss for %s: a joined %d generations meanwhile; both counting %s after", loss, flaky, joins, d.Round(time.Millisecond))
	waitProducer(t, prod)
	stats := run.w.Stop()
	checkDoubles(t, stats)
	finish(t, f, r.env, &el.want, chaosRow{Fault: fmt.Sprintf("flaky counter link (%d%% loss, %s; no netem here)", loss, flaky), Injected: 1,
		LongestRecovery: d, RecoveryMeaning: "clean link to both replicas counting", doubles: stats,
		ExtraNotes: fmt.Sprintf("the lossy replica joined %d generations during the loss; %s", joins, stats)}, nil)
	f.stopAll()
}
