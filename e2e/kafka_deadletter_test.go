package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestKafkaDeadLetters runs the dead-letter path on one Apache Kafka node
// with the broker's default limits: a burst of duplicates far larger than
// one request may carry, and a dead-letter topic too small for the letters
// it is sent. Counting must go on, exact, in both.
func TestKafkaDeadLetters(t *testing.T) {
	k := StartKafka(t, KafkaOptions{})
	t.Run("DuplicateBurst", func(t *testing.T) { testDuplicateBurst(t, k) })
	t.Run("SmallDLQ", func(t *testing.T) { testSmallDLQ(t, k) })
}

// burstDuplicates is how many records of partition 0 are produced again.
const burstDuplicates = 55000

// testDuplicateBurst publishes an election, counts it, then produces the
// first burstDuplicates records of partition 0 again while the counter is
// stopped, so that it reads them all in one micro-batch when it starts:
// written one dead letter each they are some 15 MB, over the broker's
// 1 MB message.max.bytes. The count must stay exact, every duplicate
// counted as one, within a bound, and the DLQ hold one letter per run.
func testDuplicateBurst(t *testing.T, k *Kafka) {
	bin := Binaries(t)
	env := NewEnv(t, k, 2)
	gen := votegen.Config{Seed: 2601, Scale: 0.0005}
	want, err := votegen.TrueTotals(gen)
	if err != nil {
		t.Fatal(err)
	}
	prod := Start(t, "producer", bin.Producer, env.Vars("SEED=2601", "SCALE=0.0005", "VOTES_PER_BATCH=20000", "BATCH_INTERVAL=1ms", "OUTPUT_DIR=")...)
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v\n%s", err, testbed.Tail(prod.Output(), 20))
	}
	// One micro-batch for the whole burst: no record limit or wait cuts it.
	f := newFleet(t, env, "BATCH_MAX_RECORDS=1000000", "BATCH_MAX_WAIT=20s")
	f.start("a")
	WaitCounted(t, f.live, env.Partitions, want.Total(), time.Second, 2*time.Minute)
	f.stop("a")

	recs := readTopic(t, env.Brokers, env.Topic, env.Partitions, time.Minute)[0]
	if len(recs) < burstDuplicates {
		t.Fatalf("partition 0 holds %d records, want at least %d", len(recs), burstDuplicates)
	}
	produceAgain(t, env, 0, recs[:burstDuplicates])

	start := time.Now()
	p := f.start("a")
	got := waitRejected(t, f.live, env.Partitions, vote.ReasonDuplicate.String(), burstDuplicates, 2*time.Minute)
	t.Logf("%d duplicates counted as such %s after the counter started", burstDuplicates, time.Since(start).Round(time.Millisecond))
	CheckTally(t, "counter vs generator", &got.Tally, &want)
	if !regexp.MustCompile(`msg="records rejected" .*reason=duplicate records=` + strconv.Itoa(burstDuplicates) + ` `).MatchString(p.Output()) {
		t.Errorf("no micro-batch logged the %d duplicates in one line:\n%s", burstDuplicates, testbed.Tail(p.Output(), 20))
	}
	if n := strings.Count(p.Output(), "Message Size Too Large"); n > 0 {
		t.Errorf("the broker refused %d requests as too large", n)
	}

	// One letter per run, with the whole run's coordinates.
	dlq := readTopic(t, env.Brokers, env.DLQTopic, env.Partitions, time.Minute)
	var letters, covered int64
	for _, ms := range dlq {
		for _, m := range ms {
			letters++
			var run struct {
				Reason      string
				Partition   int
				FirstOffset int64 `json:"first_offset"`
				LastOffset  int64 `json:"last_offset"`
				Records     int64
				Producer    string
				FirstSeq    int64 `json:"first_seq"`
				LastSeq     int64 `json:"last_seq"`
			}
			if err := json.Unmarshal(m.Value, &run); err != nil || run.Reason != "duplicate" || run.Partition != 0 {
				t.Errorf("dead letter %q (%v): not a run of duplicates of partition 0", m.Value, err)
				continue
			}
			if run.LastOffset-run.FirstOffset+1 != run.Records || run.Producer == "" || run.LastSeq < run.FirstSeq {
				t.Errorf("run %+v: inconsistent", run)
			}
			covered += run.Records
		}
	}
	if covered != burstDuplicates || letters > 10 {
		t.Errorf("dead letters: %d covering %d duplicates, want a few covering %d", letters, covered, burstDuplicates)
	}
	t.Logf("dead-letter topic: %d letters for %d duplicates", letters, covered)
	f.stopAll()
}

// produceAgain writes recs to partition p again, as they are, in requests
// well under the broker's limit: what a producer retrying after a leader
// failure does.
func produceAgain(t *testing.T, env Env, p int, recs []kafkaio.Record) {
	t.Helper()
	c, err := kafkaio.New(kafkaio.Config{Brokers: strings.Split(env.Brokers, ","), DialTimeout: 10 * time.Second, ClientID: "e2e"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for lo := 0; lo < len(recs); lo += 2000 {
		var msgs []kafkaio.Message
		for _, r := range recs[lo:min(lo+2000, len(recs))] {
			msgs = append(msgs, kafkaio.Message{Key: r.Key, Value: r.Value, Headers: r.Headers, Time: time.Now()})
		}
		if err := c.ProduceMessages(ctx, env.Topic, p, kafkaio.Snappy, msgs); err != nil {
			t.Fatalf("produce again: %v", err)
		}
	}
}

// waitRejected waits until the replicas own every partition and have
// rejected n records for reason, and returns their counts.
func waitRejected(t *testing.T, addrs func() []string, partitions int, reason string, n int64, timeout time.Duration) *testbed.Counts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *testbed.Counts
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := testbed.Sum(ctx, addrs())
		cancel()
		if err == nil {
			last = c
			if c.Rejected[reason] == n && c.Partitions == partitions {
				return c
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%d records rejected for %s not counted within %s: last %+v", n, reason, timeout, last)
	return nil
}

// testSmallDLQ sends a record larger than the dead-letter topic accepts,
// on topics with two limits: one a reduced letter fits, one nothing fits.
// The counter must count on, reject the record exactly once, and say in
// its metrics what became of the letter.
func testSmallDLQ(t *testing.T, k *Kafka) {
	cases := []struct {
		name     string
		maxBytes int
		metric   string // the dead-letter counter that must show it
	}{
		{"reduced", 1024, "votestream_counter_dead_letters_reduced_total"},
		{"lost", 80, "votestream_counter_dead_letters_lost_total"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := NewEnv(t, k, 2)
			createTopic(t, env.Brokers, env.DLQTopic, env.Partitions, map[string]string{"max.message.bytes": strconv.Itoa(c.maxBytes)})
			gen := votegen.Config{Seed: 2602, Scale: 0.0001}
			want, err := votegen.TrueTotals(gen)
			if err != nil {
				t.Fatal(err)
			}
			f := newFleet(t, env)
			f.start("a")
			prod := Start(t, "producer", Binaries(t).Producer, env.Vars("SEED=2602", "SCALE=0.0001", "VOTES_PER_BATCH=2000", "BATCH_INTERVAL=100ms", "OUTPUT_DIR=")...)
			waitPublished(t, prod, want.Total()/3, time.Minute)
			// Larger than the topic takes, compressed or not: a 3 KB key
			// and a value over vote.MaxRecordSize, random bytes.
			key, value := make([]byte, 3000), make([]byte, 6000)
			_, _ = rand.Read(key)
			_, _ = rand.Read(value)
			produceAgain(t, env, 1, []kafkaio.Record{{Key: key, Value: value}})
			waitProducer(t, prod)
			got := WaitCounted(t, f.live, env.Partitions, want.Total(), time.Second, 2*time.Minute)
			CheckTally(t, "counter vs generator", &got.Tally, &want)
			got = waitRejected(t, f.live, env.Partitions, vote.ReasonOversized.String(), 1, 30*time.Second)
			for r, n := range got.Rejected {
				if r != vote.ReasonOversized.String() && n != 0 {
					t.Errorf("rejected %s: %d, want 0", r, n)
				}
			}
			addr := f.live()[0]
			waitMetric(t.Context(), t, addr, c.metric, 1, 30*time.Second)
			if n := counterValue(t, addr, c.metric); n != 1 {
				t.Errorf("%s = %v, want 1", c.metric, n)
			}
			if c.name == "reduced" {
				dlq := readTopic(t, env.Brokers, env.DLQTopic, env.Partitions, time.Minute)
				var n int
				for _, ms := range dlq {
					for _, m := range ms {
						n++
						h := map[string]string{}
						for _, x := range m.Headers {
							h[x.Key] = string(x.Value)
						}
						if h["votestream-reason"] != "oversized" || h["votestream-source-partition"] != "1" || h["votestream-reduced"] == "" || len(m.Value) != 0 {
							t.Errorf("dead letter %v (%d bytes of value): want the coordinates of an oversized record, reduced", h, len(m.Value))
						}
					}
				}
				if n != 1 {
					t.Errorf("dead-letter topic holds %d letters, want 1", n)
				}
			}
			f.stopAll()
		})
	}
}

// createTopic creates topic with configs, before any service does.
func createTopic(t *testing.T, brokers, topic string, partitions int, configs map[string]string) {
	t.Helper()
	tr := &kafka.Transport{DialTimeout: 3 * time.Second}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second, Transport: tr}
	tc := kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}
	for k, v := range configs {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// counterValue reads one counter of the service at addr.
func counterValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	fams, err := testbed.Metrics(ctx, addr, name)
	if err != nil || fams[name] == nil {
		t.Fatalf("%s at %s: %v", name, addr, err)
	}
	return fams[name].GetMetric()[0].GetCounter().GetValue()
}
