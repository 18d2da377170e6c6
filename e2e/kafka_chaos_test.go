package e2e

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
)

// TestChaosKafka runs the broker faults on three Apache Kafka nodes with
// replication factor 3, min.insync.replicas=2 and acks=all, while the
// producer publishes at a steady pace and two counters count. The cases
// share one cluster (three JVMs take long to start on a small machine);
// each has its own topics, group and election, and starts on a healthy
// cluster. After each, every cell must be exact and the topic must hold
// every vote once, retries aside, which the counters must have rejected as
// duplicates.
func TestChaosKafka(t *testing.T) {
	k := StartKafka(t, KafkaOptions{Nodes: 3})
	broker := brokerName(k)
	// Short mode (`make test`) leaves the rolling restart out, the longest
	// case and the gentlest fault (a leader kill is a harsher one), to
	// keep the three-node part within a few minutes.
	cases := []struct {
		name     string
		seed     uint64
		pace     time.Duration // how long publishing the election takes
		fullOnly bool
		run      func(*kafkaCase) chaosRow
		counters []string // the counters' settings over the fleet's
	}{
		{"LeaderKill", 3101, pick(25*time.Second, 120*time.Second), false, leaderKill, nil},
		{"RollingRestart", 3102, pick(100*time.Second, 180*time.Second), true, rollingRestart, nil},
		// Micro-batches of 10 s: when the ISRs shrink the counters almost
		// always hold counted votes to checkpoint, which must be refused.
		{"TwoDown", 3103, pick(30*time.Second, 90*time.Second), false, twoDown, []string{"BATCH_MAX_WAIT=10s"}},
		{"PausedBroker", 3104, pick(25*time.Second, 90*time.Second), false, pausedBroker, nil},
		{"CoordinatorKill", 3105, pick(30*time.Second, 120*time.Second), false, coordinatorKill, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.fullOnly && !chaosFull() {
				t.Skip("runs with CHAOS=full (make chaos)")
			}
			// A case that fails half way leaves the cluster whole for
			// the next.
			t.Cleanup(func() {
				for _, n := range k.Nodes {
					if p := n.running(); p == nil || p.Exited() {
						n.Start()
					} else {
						n.Resume()
					}
				}
			})
			k.WaitHealthy(2 * time.Minute)
			kc := startKafkaCase(t, k, c.seed, c.pace, c.counters...)
			row := c.run(kc)
			row.Broker = broker
			kc.finish(row)
		})
	}
}

// kafkaCase is one fault case's election on the shared cluster.
type kafkaCase struct {
	t    *testing.T
	k    *Kafka
	env  Env
	el   election
	f    *fleet
	prod *Proc
	ends func() map[int]int64
}

// startKafkaCase starts two counters and the producer, paced to publish
// for about pace, and waits until every partition is counted.
func startKafkaCase(t *testing.T, k *Kafka, seed uint64, pace time.Duration, counters ...string) *kafkaCase {
	t.Helper()
	env := NewEnv(t, k, pick(6, 12))
	rf := "KAFKA_REPLICATION_FACTOR=3"
	kc := &kafkaCase{t: t, k: k, env: env, el: newElection(t, seed), f: newFleet(t, env, append([]string{rf}, counters...)...), ends: topicEnds(t, env)}
	kc.f.start("a")
	kc.f.start("b")
	kc.prod = Start(t, "producer", Binaries(t).Producer, env.Vars(kc.el.producerVars(pace, "OUTPUT_DIR=", rf)...)...)
	if _, _, err := waitResumed(kc.f.live, env.Partitions, false, map[int]int64{}, kc.ends, time.Now(), 2*time.Minute); err != nil {
		t.Fatalf("counting never got going: %v", err)
	}
	return kc
}

// at waits until the producer has published (i+1)/(n+2) of the election,
// so the n injections are spread over the run, and fails if it has
// already finished: the faults must hit a live stream.
func (kc *kafkaCase) at(i, n int) {
	kc.t.Helper()
	total := kc.el.want.Total()
	waitPublished(kc.t, kc.prod, total*int64(i+1)/int64(n+2), 2*time.Minute)
	if kc.prod.Exited() {
		kc.t.Fatalf("the producer finished before injection %d of %d: pace it slower", i+1, n)
	}
}

// mark is every votes partition's end offset now: the votes published
// after it are the ones a fault injected next can hold up.
func (kc *kafkaCase) mark() map[int]int64 {
	kc.t.Helper()
	for range 10 {
		ends := kc.ends()
		if ends[0] != math.MaxInt64 {
			return ends
		}
		time.Sleep(200 * time.Millisecond)
	}
	kc.t.Fatal("cannot read the votes topic's end offsets")
	return nil
}

// recovered waits until every partition is owned once and has counted
// (and checkpointed) votes published after before, its mark, and returns
// how long that took since start.
func (kc *kafkaCase) recovered(what string, before map[int]int64, start time.Time, spread bool) time.Duration {
	kc.t.Helper()
	d, _, err := waitResumed(kc.f.live, kc.env.Partitions, spread, before, kc.ends, start, pick(90*time.Second, 3*time.Minute))
	if err != nil {
		kc.t.Fatalf("%s: %v", what, err)
	}
	kc.t.Logf("%s: every partition counting again after %s", what, d.Round(time.Millisecond))
	return d
}

// alive fails the test if the producer or a counter has exited: none may
// give up on a broker fault.
func (kc *kafkaCase) alive(when string) {
	kc.t.Helper()
	if kc.prod.Exited() && !strings.Contains(kc.prod.Output(), `msg="election published"`) {
		kc.t.Fatalf("the producer exited %s\n%s", when, testbed.Tail(kc.prod.Output(), 30))
	}
	for _, n := range kc.f.names() {
		if p := kc.f.proc(n); p.Exited() {
			kc.t.Fatalf("counter %s exited %s\n%s", n, when, testbed.Tail(p.Output(), 30))
		}
	}
}

// finish waits for the producer, reads the topic back and checks the
// counters' totals, cell by cell, and their duplicate rejections.
func (kc *kafkaCase) finish(row chaosRow) {
	t := kc.t
	t.Helper()
	waitProducer(t, kc.prod)
	tally, repeats := readBack(t, kc.env, kc.el.want.Total())
	CheckTally(t, "topic vs generator", &tally, &kc.el.want)
	t.Logf("topic read back: %d votes once each, %d records repeated by retried produces", tally.Total(), repeats)
	note := fmt.Sprintf("topic read back: every vote once, %d repeated by retries (counted as duplicates)", repeats)
	if row.ExtraNotes != "" {
		note = row.ExtraNotes + "; " + note
	}
	row.ExtraNotes = note
	finish(t, kc.f, kc.env, &kc.el.want, row, map[string]int64{vote.ReasonDuplicate.String(): repeats})
	kc.f.stopAll()
}

// leaders maps each partition of topic to its leader's broker id.
func (kc *kafkaCase) leaders(topic string) map[int]int {
	kc.t.Helper()
	m, err := kc.k.Metadata(context.Background(), topic)
	if err != nil {
		kc.t.Fatalf("metadata of %s: %v", topic, err)
	}
	out := map[int]int{}
	for _, tp := range m.Topics {
		for _, p := range tp.Partitions {
			if p.Leader.Host != "" {
				out[p.ID] = p.Leader.ID
			}
		}
	}
	return out
}

// sharedLeader finds a broker that leads both a votes partition and a
// checkpoint partition, the same one if it can.
func (kc *kafkaCase) sharedLeader() (broker, votes, ckpt int) {
	kc.t.Helper()
	vl, cl := kc.leaders(kc.env.Topic), kc.leaders(kc.env.CheckpointTopic)
	for p := range kc.env.Partitions {
		if vl[p] != 0 && vl[p] == cl[p] {
			return vl[p], p, p
		}
	}
	for p := range kc.env.Partitions {
		for q := range kc.env.Partitions {
			if vl[p] != 0 && vl[p] == cl[q] {
				return vl[p], p, q
			}
		}
	}
	kc.t.Fatalf("no broker leads both a votes and a checkpoint partition: %v, %v", vl, cl)
	return 0, 0, 0
}

// killRestart SIGKILLs broker id, waits until every partition has counted
// past before (spread: over every replica that can have one), checks no
// service exited, and restarts the broker. It returns how long counting
// took to recover and the ISRs to fill again after the restart.
func (kc *kafkaCase) killRestart(id int, what string, before map[int]int64, spread bool) (recovery, isr time.Duration) {
	kc.t.Helper()
	n := kc.k.Node(id)
	start := time.Now()
	n.Kill()
	recovery = kc.recovered(what, before, start, spread)
	kc.alive("after " + what)
	n.Start()
	return recovery, kc.k.WaitHealthy(2 * time.Minute)
}

// leaderKill SIGKILLs the leader of a votes partition and of a checkpoint
// partition, waits until counting goes on without it, and restarts it,
// twice.
func leaderKill(kc *kafkaCase) chaosRow {
	kills := pick(1, 2)
	var longest time.Duration
	var notes []string
	for i := range kills {
		kc.at(i, kills)
		victim, vp, cp := kc.sharedLeader()
		d, isr := kc.killRestart(victim, fmt.Sprintf("kill %d of broker %d (leader of votes/%d and checkpoints/%d)", i+1, victim, vp, cp), kc.mark(), false)
		longest = max(longest, d)
		notes = append(notes, fmt.Sprintf("broker %d: full ISR %s after restart", victim, isr.Round(100*time.Millisecond)))
	}
	return chaosRow{Fault: "partition leader SIGKILL (votes + checkpoints), restart", Injected: kills, LongestRecovery: longest,
		RecoveryMeaning: "kill to every partition counting votes published after it", ExtraNotes: strings.Join(notes, ", ")}
}

// rollingRestart restarts every broker in turn with SIGTERM (a controlled
// shutdown: leadership moves first), waiting for counting to go on while
// it is down and for every ISR to be full again before the next.
func rollingRestart(kc *kafkaCase) chaosRow {
	var longest time.Duration
	var notes []string
	for i, n := range kc.k.Nodes {
		kc.at(i, len(kc.k.Nodes))
		before := kc.mark()
		start := time.Now()
		n.Stop()
		stopped := time.Since(start)
		d := kc.recovered(fmt.Sprintf("broker %d stopped (shutdown took %s)", n.ID, stopped.Round(time.Millisecond)), before, start, false)
		longest = max(longest, d)
		kc.alive("during a rolling restart")
		n.Start()
		isr := kc.k.WaitHealthy(2 * time.Minute)
		notes = append(notes, fmt.Sprintf("broker %d: shutdown %s, full ISR %s after start", n.ID, stopped.Round(100*time.Millisecond), isr.Round(100*time.Millisecond)))
	}
	return chaosRow{Fault: "rolling restart, SIGTERM one broker at a time", Injected: len(kc.k.Nodes), LongestRecovery: longest,
		RecoveryMeaning: "SIGTERM to every partition counting votes published after it", ExtraNotes: strings.Join(notes, ", ")}
}

// notEnoughRE is a produce refused because too few replicas are in sync.
var notEnoughRE = regexp.MustCompile(`msg="produce failed, retrying" .*?topic=(\S+) .*Not Enough Replicas`)

// twoDown stops two brokers, one after the other, and keeps both down: the
// partitions' ISRs shrink to the one left, below min.insync.replicas, so it
// refuses every produce and checkpoint write (the stops are controlled
// shutdowns so the ISRs do shrink: the controller quorum, two of three,
// records that before the second broker goes; killed brokers would leave
// the survivor waiting for replicas without quorum to drop them). Neither
// service may exit; both must go on by themselves once a broker is back.
func twoDown(kc *kafkaCase) chaosRow {
	kc.at(0, 1)
	// The broker left is the group's coordinator, so the counters keep
	// their partitions (heartbeats write nothing) and go on trying to
	// checkpoint. Without a coordinator they would hold no partitions,
	// and write nothing to be refused, until a broker returns.
	coord := kc.k.Coordinator(kc.env.Group)
	var down []*KafkaNode
	for _, n := range kc.k.Nodes {
		if n.ID != coord {
			down = append(down, n)
		}
	}
	outs := kc.outputs()
	for _, n := range down {
		n.Stop()
	}
	hold := time.Now()
	// Marked once both are down: until then the ISRs had two replicas and
	// the writes went through.
	before := kc.mark()
	// Refused: the producer's votes, and a counter's checkpoints if it has
	// votes to checkpoint. A counter writes one only for votes it counted
	// since the last: one caught up with the topic when the ISRs shrank
	// has nothing to write until a broker is back. No checkpoint can be
	// written after the mark, so the offsets read now are final.
	refused := map[string]bool{}
	if !behind(offsetsNow(kc.f), before) {
		refused[kc.env.CheckpointTopic] = true
		kc.t.Log("the counters had checkpointed every vote when the ISRs shrank: no checkpoint to refuse")
	}
	deadline := time.Now().Add(pick(45*time.Second, 90*time.Second))
	for !refused[kc.env.Topic] || !refused[kc.env.CheckpointTopic] {
		if time.Now().After(deadline) {
			kc.t.Fatalf("with two brokers down, no produce refused for too few replicas (votes %v, checkpoints %v)", refused[kc.env.Topic], refused[kc.env.CheckpointTopic])
		}
		for name, out := range kc.outputs() {
			for _, m := range notEnoughRE.FindAllStringSubmatch(out[len(outs[name]):], -1) {
				refused[m[1]] = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(pick(5*time.Second, 20*time.Second) - time.Since(hold))
	kc.alive("with two brokers down")
	held := time.Since(hold)
	kc.t.Logf("two brokers down for %s: votes and checkpoints refused (not enough replicas)", held.Round(time.Millisecond))
	start := time.Now()
	down[0].Start()
	d := kc.recovered(fmt.Sprintf("broker %d back", down[0].ID), before, start, false)
	down[1].Start()
	isr := kc.k.WaitHealthy(2 * time.Minute)
	return chaosRow{Fault: "two brokers down (SIGTERM), one back", Injected: 1, LongestRecovery: d,
		RecoveryMeaning: "first broker started to every partition counting votes published after both went down",
		ExtraNotes: fmt.Sprintf("both down %s, votes and checkpoints refused (Not Enough Replicas) meanwhile, no service exited; full ISR %s after the second started",
			held.Round(100*time.Millisecond), isr.Round(100*time.Millisecond))}
}

// behind reports whether any partition's checkpointed offset is short of
// its end.
func behind(checkpointed, ends map[int]int64) bool {
	for p, end := range ends {
		if checkpointed[p] < end {
			return true
		}
	}
	return false
}

// outputs is what the producer and each counter printed so far.
func (kc *kafkaCase) outputs() map[string]string {
	out := map[string]string{"producer": kc.prod.Output()}
	for _, n := range kc.f.names() {
		out[n] = kc.f.proc(n).Output()
	}
	return out
}

// brokerSessionTimeout is Kafka's default broker.session.timeout.ms: a
// broker silent for longer is fenced and loses its leaderships.
const brokerSessionTimeout = 9 * time.Second

// pausedBroker stops the leader of a votes partition with SIGSTOP, like a
// broker in a long GC pause or cut off by the network, for longer than its
// session timeout, then resumes it. Counting must go on without it, and it
// must rejoin the ISRs after SIGCONT.
func pausedBroker(kc *kafkaCase) chaosRow {
	kc.at(0, 1)
	victim, vp, _ := kc.sharedLeader()
	n := kc.k.Node(victim)
	before := kc.mark()
	start := time.Now()
	n.Pause()
	d := kc.recovered(fmt.Sprintf("broker %d (leader of votes/%d) paused", victim, vp), before, start, false)
	time.Sleep(brokerSessionTimeout + 2*time.Second - time.Since(start))
	kc.alive("with a broker paused")
	paused := time.Since(start)
	n.Resume()
	isr := kc.k.WaitHealthy(2 * time.Minute)
	return chaosRow{Fault: "broker SIGSTOP past its session timeout, SIGCONT", Injected: 1, LongestRecovery: d,
		RecoveryMeaning: "SIGSTOP to every partition counting votes published after it",
		ExtraNotes:      fmt.Sprintf("paused %s; full ISR %s after SIGCONT", paused.Round(100*time.Millisecond), isr.Round(100*time.Millisecond))}
}

// coordinatorKill SIGKILLs the broker coordinating the counters' group
// just as they rebalance (another counter joins), and restarts
// it. Every partition must be owned once and counting again.
func coordinatorKill(kc *kafkaCase) chaosRow {
	kills := pick(1, 2)
	var longest time.Duration
	var notes []string
	for i := range kills {
		kc.at(i, kills)
		coord := kc.k.Coordinator(kc.env.Group)
		before := kc.mark()
		outs := kc.outputs()
		name := string(rune('c' + i))
		step := "replica " + name + " joins"
		kc.f.start(name)
		// The rebalance is under way once a replica gives its partitions up.
		deadline := time.Now().Add(30 * time.Second)
		for !kc.revoked(outs) {
			if time.Now().After(deadline) {
				kc.t.Fatalf("%s: no replica released its partitions within 30s", step)
			}
			time.Sleep(20 * time.Millisecond)
		}
		d, isr := kc.killRestart(coord, fmt.Sprintf("coordinator %d killed as %s", coord, step), before, true)
		longest = max(longest, d)
		notes = append(notes, fmt.Sprintf("%s, coordinator %d killed: full ISR %s after restart", step, coord, isr.Round(100*time.Millisecond)))
	}
	return chaosRow{Fault: "group coordinator SIGKILL during a rebalance, restart", Injected: kills, LongestRecovery: longest,
		RecoveryMeaning: "kill to every partition owned once and counting votes published after it", ExtraNotes: strings.Join(notes, ", ")}
}

// revoked reports whether a counter released its partitions since outs.
func (kc *kafkaCase) revoked(outs map[string]string) bool {
	for name, out := range kc.outputs() {
		if name != "producer" && strings.Contains(out[len(outs[name]):], `msg="partitions released"`) {
			return true
		}
	}
	return false
}

// TestChaosKafkaSequence is issue 26's night: the three-node faults one
// after another on one election, not one at a time: a votes leader
// SIGKILLed and restarted, a rolling restart of all three brokers, then a
// checkpoint-partition leader paused for 20 s. The producer publishes the
// seed's sample at its default batch size every 500 ms, and both counters
// run with their defaults (only the replication factor set). Every cell
// must be exact, and counted within two minutes of the producer's exit.
// The retried runs a leader's death leaves must neither stall the count
// nor flood the dead-letter topic. Several minutes: CHAOS=full only.
func TestChaosKafkaSequence(t *testing.T) {
	if !chaosFull() {
		t.Skip("runs with CHAOS=full (make chaos): several minutes on three nodes")
	}
	k := StartKafka(t, KafkaOptions{Nodes: 3})
	env := NewEnv(t, k, 12)
	rf := "KAFKA_REPLICATION_FACTOR=3"
	el := newElection(t, 2603)
	f := newFleet(t, env)
	f.env = env.Vars(rf) // the counters' defaults, not the fleet's short timeouts
	kc := &kafkaCase{t: t, k: k, env: env, el: el, f: f, ends: topicEnds(t, env)}
	f.start("a")
	f.start("b")
	kc.prod = Start(t, "producer", Binaries(t).Producer, env.Vars("SEED=2603", "SCALE=0.005", "BATCH_INTERVAL=500ms", "OUTPUT_DIR=", rf)...)
	if _, _, err := waitResumed(f.live, env.Partitions, false, map[int]int64{}, kc.ends, time.Now(), 2*time.Minute); err != nil {
		t.Fatalf("counting never got going: %v", err)
	}
	w := watchExact(f, kc.prod, &el.want)
	defer w.stop()

	kc.at(0, 3)
	t0 := time.Now()
	since := func(what string) {
		t.Logf("%s %s after the first fault", what, time.Since(t0).Round(100*time.Millisecond))
	}
	victim, vp, cp := kc.sharedLeader()
	kill, _ := kc.killRestart(victim, fmt.Sprintf("broker %d (leader of votes/%d and checkpoints/%d) killed", victim, vp, cp), kc.mark(), false)
	var notes []string
	longest := kill
	since("rolling restart starts")
	for _, n := range k.Nodes {
		before, start := kc.mark(), time.Now()
		n.Stop()
		d := kc.recovered(fmt.Sprintf("rolling restart: broker %d stopped", n.ID), before, start, false)
		longest = max(longest, d)
		kc.alive("during the rolling restart")
		n.Start()
		k.WaitHealthy(2 * time.Minute)
	}
	since("pause starts")
	pv := kc.leaders(env.CheckpointTopic)[0]
	before, start := kc.mark(), time.Now()
	k.Node(pv).Pause()
	longest = max(longest, kc.recovered(fmt.Sprintf("broker %d (leader of checkpoints/0) paused", pv), before, start, false))
	time.Sleep(20*time.Second - time.Since(start))
	kc.alive("with the checkpoint leader paused")
	k.Node(pv).Resume()
	k.WaitHealthy(2 * time.Minute)
	since("faults over")
	notes = append(notes, fmt.Sprintf("killed broker %d, rolled all 3, paused broker %d for 20s", victim, pv))

	waitProducer(t, kc.prod)
	exited, exact := w.wait(2 * time.Minute)
	t.Logf("the producer exited %s after the first fault", exited.Sub(t0).Round(100*time.Millisecond))
	if exact.IsZero() {
		t.Errorf("not every cell exact within 2m of the producer's exit (%s)", exited.Format(time.TimeOnly))
	} else {
		// The sample that saw the exit may come after the exact one.
		after := max(0, exact.Sub(exited))
		notes = append(notes, fmt.Sprintf("every cell exact %s after the producer's exit", after.Round(100*time.Millisecond)))
		t.Logf("every cell exact %s after the producer's exit", after.Round(time.Millisecond))
	}
	for _, name := range f.names() {
		if out := f.proc(name).Output(); strings.Contains(out, "Message Size Too Large") || strings.Contains(out, `msg="dead letters lost`) {
			t.Errorf("counter %s: dead letters refused or lost:\n%s", name, testbed.Tail(out, 20))
		}
	}
	kc.finish(chaosRow{Fault: "leader SIGKILL, rolling restart, checkpoint leader paused 20s, in sequence", Broker: brokerName(k),
		Injected: 5, LongestRecovery: longest, RecoveryMeaning: "fault to every partition counting votes published after it",
		ExtraNotes: strings.Join(notes, "; ")})
}

// exactWatch samples the counters until they show want in every cell over
// every partition, noting when the producer exited and when they first did.
type exactWatch struct {
	mu            sync.Mutex
	exited, exact time.Time
	done          chan struct{}
	wg            sync.WaitGroup
}

func watchExact(f *fleet, prod *Proc, want *vote.Tally) *exactWatch {
	w := &exactWatch{done: make(chan struct{})}
	w.wg.Go(func() {
		for {
			select {
			case <-w.done:
				return
			case <-time.After(250 * time.Millisecond):
			}
			now := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := testbed.Sum(ctx, f.live())
			cancel()
			w.mu.Lock()
			if w.exited.IsZero() && prod.Exited() {
				w.exited = now
			}
			if w.exact.IsZero() && err == nil && c.Tally == *want {
				w.exact = now
			}
			w.mu.Unlock()
		}
	})
	return w
}

// wait waits up to bound after the producer's exit for the first exact
// sample, and returns both times (exact zero if none came).
func (w *exactWatch) wait(bound time.Duration) (exited, exact time.Time) {
	deadline := time.Now().Add(bound + 10*time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		exited, exact = w.exited, w.exact
		w.mu.Unlock()
		if !exact.IsZero() || (!exited.IsZero() && time.Since(exited) > bound) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !exact.IsZero() && !exited.IsZero() && exact.Sub(exited) > bound {
		exact = time.Time{}
	}
	return exited, exact
}

func (w *exactWatch) stop() {
	close(w.done)
	w.wg.Wait()
}
