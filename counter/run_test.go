package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestCountersInProcess runs two counters' run in this process against an
// in-process kfake: both count while votes arrive, then one stops (its
// final checkpoint, a rebalance) and the other takes every partition over
// from the checkpoints. Every cell is exact, summed over both and then on
// the survivor alone: the group loop, the generations and the micro-batches
// without a built binary.
func TestCountersInProcess(t *testing.T) {
	e := newTestElection(t, 7, 4)
	a, b := startCounter(t, e.env, "a"), startCounter(t, e.env, "b")
	// Both in the group's generation before the votes come.
	waitOwning(t, a.addr)
	waitOwning(t, b.addr)

	e.publish(t)
	if got := waitExact(t, &e.want, a.addr, b.addr); got.Partitions != e.parts {
		t.Errorf("%d partitions owned by both, want %d", got.Partitions, e.parts)
	}
	a.stop(t)
	if got := waitExact(t, &e.want, b.addr); got.Partitions != e.parts {
		t.Errorf("b owns %d partitions after a stopped, want %d", got.Partitions, e.parts)
	}
	b.stop(t)
}

// testElection is a seeded election to count on a one-broker kfake.
type testElection struct {
	cluster *kfake.Cluster
	brokers string
	parts   int
	gen     votegen.Config
	want    vote.Tally
	env     []string // a counter's environment to count it
}

// newTestElection starts a one-broker kfake, closed when the test ends, for
// the election of seed over parts partitions. Its env names the topics and
// the group, a free HTTP port, short batch and group timeouts and the
// election's scale, then extra: a later setting wins.
func newTestElection(t *testing.T, seed uint64, parts int, extra ...string) *testElection {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e := &testElection{cluster: cluster, brokers: cluster.ListenAddrs()[0], parts: parts,
		gen: votegen.Config{Seed: seed, Scale: 0.0001}}
	if e.want, err = votegen.TrueTotals(e.gen); err != nil {
		t.Fatal(err)
	}
	e.env = append([]string{"KAFKA_BROKERS=" + e.brokers, "KAFKA_TOPIC=votes", "KAFKA_CHECKPOINT_TOPIC=ckpt",
		"KAFKA_DLQ_TOPIC=dlq", fmt.Sprintf("KAFKA_PARTITIONS=%d", parts), "GROUP_ID=g", "HTTP_ADDR=127.0.0.1:0",
		"BATCH_MAX_WAIT=100ms", "GROUP_SESSION_TIMEOUT=2s", "GROUP_REBALANCE_TIMEOUT=4s",
		fmt.Sprintf("SCALE=%g", e.gen.Scale)}, extra...)
	return e
}

// publish publishes the election's votes.
func (e *testElection) publish(t *testing.T) {
	t.Helper()
	publish(t, e.brokers, e.parts, e.gen, e.want.Total())
}

type inProcess struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	out    *testbed.Buffer
}

var servingRE = regexp.MustCompile(`msg="serving metrics".* addr=(\S+)`)

func startCounter(t *testing.T, env []string, replica string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &inProcess{cancel: cancel, done: make(chan error, 1), out: &testbed.Buffer{}}
	go func() { c.done <- run(ctx, append(env, "REPLICA_ID="+replica), io.Discard, c.out) }()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("--- counter %s:\n%s", replica, testbed.Tail(c.out.String(), 40))
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(c.out.String()); m != nil {
			c.addr = m[1]
			return c
		}
		select {
		case err := <-c.done:
			t.Fatalf("counter %s ended: %v\n%s", replica, err, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter %s serves no metrics:\n%s", replica, c.out.String())
		}
	}
}

func (c *inProcess) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of its context's end")
	}
}

// publish writes the election as the producer does: vote n to partition n
// mod parts, with its producer and sequence headers.
func publish(t *testing.T, brokers string, parts int, cfg votegen.Config, total int64) {
	t.Helper()
	k := kafkaio.Config{Brokers: []string{brokers}, Topic: "votes", CheckpointTopic: "ckpt", DLQTopic: "dlq",
		Partitions: parts, ReplicationFactor: 1, DialTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testbed.CreateTopics(ctx, k); err != nil {
		t.Fatal(err)
	}
	client, err := kafkaio.New(k, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	g, err := votegen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := make([]kafkaio.Batch, parts)
	for p := range batches {
		batches[p].Grow(int(total)/parts + 1)
	}
	var v vote.Vote
	for seq := int64(0); g.Next(&v); seq++ {
		batches[seq%int64(parts)].Add(time.Now(), vote.AppendJSON(nil, &v), []byte("test-producer"), seq)
	}
	for p := range batches {
		if err := client.ProduceBatch(ctx, "votes", p, kafkaio.Snappy, &batches[p]); err != nil {
			t.Fatal(err)
		}
	}
}

// waitExact waits until the counters at addrs together show want in every
// cell, and returns what they show.
func waitExact(t *testing.T, want *vote.Tally, addrs ...string) *testbed.Counts {
	t.Helper()
	var got *testbed.Counts
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err = testbed.Sum(ctx, addrs)
		cancel()
		if err == nil && got.Tally == *want {
			return got
		}
	}
	if got != nil {
		t.Fatalf("not exact within a minute: %d of %d votes counted (last error %v)", got.Tally.Total(), want.Total(), err)
	}
	t.Fatalf("no counts within a minute: %v", err)
	return nil
}

// waitOwning waits until the counter at addr owns a partition.
func waitOwning(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := testbed.Scrape(ctx, addr)
		cancel()
		if err == nil && c.Partitions > 0 {
			return
		}
	}
	t.Fatalf("the counter at %s owns no partition after a minute", addr)
}
