package e2e

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/checkpoint"
)

// TestChaosCounterKill kills a counter replica with SIGKILL at random
// moments (while it counts, checkpoints or restores), at least ten times in
// one run, restarting it each time; the totals must still be exact.
func TestChaosCounterKill(t *testing.T) {
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, pick(6, 12))
	el := newElection(t, 3001)
	f := newFleet(t, env)
	f.start("a")
	f.start("b")
	kills := pick(10, 20)
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(30*time.Second, 90*time.Second), "OUTPUT_DIR=")...)...)

	var longest time.Duration
	measured, duringRun := 0, 0
	for i := range kills {
		name := []string{"a", "b"}[rand.IntN(2)]
		time.Sleep(time.Duration(200+rand.IntN(1800)) * time.Millisecond)
		if !prod.Exited() {
			duringRun++
		}
		killed := time.Now()
		f.kill(name)
		p := f.start(name)
		// Every third restart is killed again before it restores, to hit
		// the restore path too; the others are timed to counting again.
		if i%3 == 2 {
			time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond)
			continue
		}
		p.WaitOutput(t, restoredRE, time.Minute)
		if d := time.Since(killed); d > longest {
			longest = d
		}
		measured++
	}
	t.Logf("%d kills (%d while the producer ran); longest kill-to-restored of %d timed: %s", kills, duringRun, measured, longest)
	if duringRun < kills/2 {
		t.Errorf("only %d of %d kills happened while votes flowed: the producer is paced too fast", duringRun, kills)
	}
	waitProducer(t, prod)
	finish(t, f, env, &el.want, chaosRow{Fault: "counter SIGKILL", Injected: kills, LongestRecovery: longest,
		RecoveryMeaning: "kill to restarted replica counting (checkpoints restored)"}, nil)
	f.stopAll()
}

// TestChaosScaling takes the group through 1 -> 3 -> 2 -> 1 -> 3 replicas,
// then to more replicas than partitions, while votes flow. After each step
// every partition must be owned by exactly one replica and move again; the
// time that takes is reported per step.
func TestChaosScaling(t *testing.T) {
	bin := Binaries(t)
	broker := StartBroker(t)
	const partitions = 4
	env := NewEnv(t, broker, partitions)
	el := newElection(t, 3002)
	f := newFleet(t, env)
	ends := topicEnds(t, env)
	f.start("r0")
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(30*time.Second, 150*time.Second), "OUTPUT_DIR=")...)...)
	// Let the first replica get going before the churn.
	if _, _, err := waitResumed(f.live, partitions, false, map[int]int64{}, ends, time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}

	steps := []int{3, 2, 1, 3, partitions + 1}
	next := 1
	var longest time.Duration
	var lines []string
	for _, want := range steps {
		before := offsetsNow(f)
		start := time.Now()
		have := f.names()
		switch {
		case want > len(have):
			for range want - len(have) {
				f.start("r" + string(rune('0'+next)))
				next++
			}
		case want < len(have):
			for _, n := range have[:len(have)-want] {
				f.stop(n)
			}
		}
		d, each, err := waitResumed(f.live, partitions, true, before, ends, start, time.Minute)
		if err != nil {
			t.Fatalf("%d -> %d replicas: %v", len(have), want, err)
		}
		var per []string
		for p := range partitions {
			per = append(per, fmt.Sprintf("p%d %s", p, each[p].Round(time.Millisecond)))
		}
		line := fmt.Sprintf("%d -> %d replicas: every partition owned once and moving after %s (%s)", len(have), want, d.Round(time.Millisecond), strings.Join(per, ", "))
		t.Log(line)
		lines = append(lines, fmt.Sprintf("%d->%d %s", len(have), want, d.Round(10*time.Millisecond)))
		longest = max(longest, d)
		if prod.Exited() {
			t.Errorf("the producer finished before step %d -> %d: pace it slower", len(have), want)
		}
	}
	var restores []time.Duration
	for _, n := range f.names() {
		restores = append(restores, restoreTimes(f.proc(n).Output())...)
	}
	slowest := time.Duration(0)
	for _, d := range restores {
		slowest = max(slowest, d)
	}
	t.Logf("checkpoint restore (\"partitions restored\" took) of the current replicas: %d generations, slowest %s", len(restores), slowest)
	waitProducer(t, prod)
	finish(t, f, env, &el.want, chaosRow{Fault: "scaling 1-3-2-1-3-5 (4 partitions)", Injected: len(steps), LongestRecovery: longest,
		RecoveryMeaning: "step to every partition owned once and moving",
		ExtraNotes:      "per step: " + strings.Join(lines, ", ") + fmt.Sprintf("; slowest checkpoint restore %s", slowest.Round(time.Millisecond))}, nil)
	f.stopAll()
}

// TestChaosBrokerRestart stops and starts the broker (same port, same
// data) twice while the producer and two counters run; both must
// reconnect by themselves and the totals must be exact.
func TestChaosBrokerRestart(t *testing.T) {
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, pick(6, 12))
	el := newElection(t, 3003)
	f := newFleet(t, env)
	f.start("a")
	f.start("b")
	ends := topicEnds(t, env)
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(30*time.Second, 90*time.Second), "OUTPUT_DIR=")...)...)

	restarts := pick(2, 3)
	var longest time.Duration
	total := el.want.Total()
	for i := range restarts {
		waitPublished(t, prod, total*int64(i+1)/int64(restarts+2), 2*time.Minute)
		if prod.Exited() {
			t.Fatalf("the producer finished before broker restart %d: pace it slower", i+1)
		}
		before := offsetsNow(f)
		start := time.Now()
		broker.Restart()
		d, _, err := waitResumed(f.live, env.Partitions, false, before, ends, start, time.Minute)
		if err != nil {
			t.Fatalf("after broker restart %d: %v", i+1, err)
		}
		t.Logf("broker restart %d: counting again on every partition %s after the stop began", i+1, d.Round(time.Millisecond))
		longest = max(longest, d)
	}
	waitProducer(t, prod)
	finish(t, f, env, &el.want, chaosRow{Fault: "broker stop/start", Injected: restarts, LongestRecovery: longest,
		RecoveryMeaning: "stop began to every partition counting again"}, nil)
	f.stopAll()
}

var releasedRE = regexp.MustCompile(`msg="(partitions released|generation failed|rejoining the group afresh)"`)

// TestChaosStalledReplica stops a replica with SIGSTOP past its session
// timeout; the other takes its partitions over and counts on, and is then
// SIGKILLed before the zombie gets SIGCONT. The zombie's lease ran out while
// it was stopped, so it should write no checkpoint after SIGCONT; one it had
// already sent may still land behind the survivor's newer ones (the test
// reads the checkpoint topic to count them), and the owners after the next
// rebalance restore from it. The totals must be exact: a late checkpoint is
// stale but consistent, so it only makes the next owner count again what it
// covers.
func TestChaosStalledReplica(t *testing.T) {
	bin := Binaries(t)
	broker := StartBroker(t)
	env := NewEnv(t, broker, pick(6, 12))
	el := newElection(t, 3005)
	f := newFleet(t, env)
	f.start("a")
	f.start("b")
	ends := topicEnds(t, env)
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(30*time.Second, 90*time.Second), "OUTPUT_DIR=")...)...)

	stalls := pick(1, 2)
	total := el.want.Total()
	var longest time.Duration
	late := 0
	for i := range stalls {
		waitPublished(t, prod, total*int64(i+1)/int64(stalls+2), 2*time.Minute)
		zombie := f.proc("a")
		before := offsetsNow(f)
		f.setPaused("a", true)
		stopped := time.Now()
		zombie.Signal(syscall.SIGSTOP)
		// b takes every partition once a's session (2s) has expired.
		d, _, err := waitResumed(f.live, env.Partitions, false, before, ends, stopped, time.Minute)
		if err != nil {
			zombie.Signal(syscall.SIGCONT)
			t.Fatalf("stall %d: b did not take over: %v", i+1, err)
		}
		longest = max(longest, d)
		time.Sleep(time.Second) // b counts and checkpoints past the zombie
		f.kill("b")
		outBefore := len(zombie.Output())
		zombie.Signal(syscall.SIGCONT)
		f.setPaused("a", false)
		// The zombie writes its late checkpoints, finds out it lost its
		// partitions, rejoins and restores from the checkpoint topic.
		deadline := time.Now().Add(30 * time.Second)
		for {
			out := zombie.Output()[outBefore:]
			if loc := releasedRE.FindStringIndex(out); loc != nil {
				late += strings.Count(out[:loc[1]], `msg=micro-batch`)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stall %d: the zombie did not notice it lost its partitions within 30s\n%s", i+1, testbed.Tail(zombie.Output(), 30))
			}
			time.Sleep(50 * time.Millisecond)
		}
		f.start("b")
	}
	waitProducer(t, prod)
	// Late writes: checkpoints whose offset is below the one before them in
	// their partition, i.e. a stale state written after a newer one.
	stale := 0
	for _, recs := range readTopic(t, env.Brokers, env.CheckpointTopic, env.Partitions, time.Minute) {
		prev := int64(-1)
		for _, r := range recs {
			var st checkpoint.State
			if err := st.UnmarshalBinary(r.Value); err != nil {
				t.Fatalf("checkpoint at offset %d: %v", r.Offset, err)
			}
			if st.Offset < prev {
				stale++
			}
			prev = st.Offset
		}
	}
	t.Logf("%d stalls; the zombie checkpointed %d micro-batches after SIGCONT; %d checkpoints in the topic went back behind a newer one", stalls, late, stale)
	finish(t, f, env, &el.want, chaosRow{Fault: "stalled replica (SIGSTOP past session, survivor SIGKILLed, SIGCONT)", Injected: stalls, LongestRecovery: longest,
		RecoveryMeaning: "SIGSTOP to the other replica counting every partition",
		ExtraNotes:      fmt.Sprintf("the zombie checkpointed %d micro-batches after SIGCONT; %d stale checkpoints written after newer ones", late, stale)}, nil)
	f.stopAll()
}
