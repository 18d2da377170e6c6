package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestKafkaExactness runs, on one Apache Kafka node, the ways a count could
// go wrong off the scripted paths (issue 32), each on tiny elections:
//
//   - a counter of a new votes topic, or of a topic deleted and made again,
//     that finds another topic's checkpoints ignores them and counts its own
//     election exactly; the checkpoint and dead-letter topics are named
//     after KAFKA_TOPIC unless set;
//   - votes with another scheme's keys (kcat) are all counted, only
//     votestream's keys are deduplicated, and producer ids past the bounds
//     are rejected, not kept;
//   - partitions added to the votes topic alone stop the counters with one
//     line; added to the checkpoint topic too, they are counted;
//   - a partition whose next records were deleted before they were counted
//     stops its reader, visibly (metric, readiness, log), and is never
//     counted past the hole;
//   - votes of an aborted transaction are not counted, and a partition that
//     ends in a transaction marker is read to its end.
func TestKafkaExactness(t *testing.T) {
	RequireTool(t, "kcat")
	k := StartKafka(t, KafkaOptions{})
	x := &exactRig{t: t, k: k, bin: Binaries(t), id: NewEnv(t, k, 4).Group}
	x.admin = x.client()

	t.Run("another topic's checkpoints", x.foreignCheckpoints)
	t.Run("keys, bounds and new partitions", x.keysAndPartitions)
	t.Run("records deleted before counted", x.deletedRecords)
	t.Run("transactions", x.transactions)
	t.Run("restoring checkpoints", x.restoring)
}

// exactScale is a tiny election: a few thousand votes.
const exactScale = 0.00001

type exactRig struct {
	t     *testing.T
	k     *Kafka
	bin   Bins
	id    string // unique per run: topic and group names
	admin *kafkaio.Client
}

func (x *exactRig) client() *kafkaio.Client {
	c, err := kafkaio.New(exactKafka(x.k.Addr, ""), slog.New(slog.DiscardHandler))
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(c.Close)
	return c
}

// vars is a service's environment on topic, with the checkpoint topic set
// only if ckpt is not empty; the group is the topic's.
func (x *exactRig) vars(topic, ckpt string, extra ...string) []string {
	v := []string{"KAFKA_BROKERS=" + x.k.Addr, "KAFKA_TOPIC=" + topic, "KAFKA_PARTITIONS=4",
		"GROUP_ID=group-" + topic, "HTTP_ADDR=127.0.0.1:0", "SCALE=" + strconv.FormatFloat(exactScale, 'g', -1, 64),
		"BATCH_MAX_WAIT=200ms", "GROUP_SESSION_TIMEOUT=2s", "GROUP_REBALANCE_TIMEOUT=4s"}
	if ckpt != "" {
		v = append(v, "KAFKA_CHECKPOINT_TOPIC="+ckpt)
	}
	return append(v, extra...)
}

// publish runs the producer of election seed on topic to its end and
// returns the election's totals.
func (x *exactRig) publish(topic, ckpt string, seed uint64) vote.Tally {
	x.t.Helper()
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: exactScale})
	if err != nil {
		x.t.Fatal(err)
	}
	p := Start(x.t, "producer-"+topic, x.bin.Producer, x.vars(topic, ckpt, "SEED="+strconv.FormatUint(seed, 10),
		"VOTES_PER_BATCH=100000", "BATCH_INTERVAL=0", "OUTPUT_DIR=")...)
	waitProducer(x.t, p)
	return want
}

// count starts a counter and waits until it shows want over every
// partition, exactly.
func (x *exactRig) count(topic, ckpt string, partitions int, want *vote.Tally) (*Proc, string) {
	x.t.Helper()
	c := Start(x.t, "counter-"+topic, x.bin.Counter, x.vars(topic, ckpt)...)
	addr := c.MetricsAddr(x.t)
	got := WaitCounted(x.t, func() []string { return []string{addr} }, partitions, want.Total(), time.Second, 2*time.Minute)
	CheckTally(x.t, topic, &got.Tally, want)
	return c, addr
}

func (x *exactRig) stop(c *Proc) {
	x.t.Helper()
	if err := c.Stop(30 * time.Second); err != nil {
		x.t.Errorf("counter did not stop cleanly: %v\n%s", err, testbed.Tail(c.Output(), 20))
	}
}

func (x *exactRig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	x.t.Cleanup(cancel)
	return ctx
}

// foreignCheckpoints: election 1 on topic a (checkpoints in the derived
// a.checkpoints); then topic a deleted and made again for election 2, and
// election 3 on topic b, both told to use a.checkpoints: each counts its
// own election exactly and says why the checkpoints it found are not its.
func (x *exactRig) foreignCheckpoints(t *testing.T) {
	x.t = t
	a, b := "exact-a-"+x.id, "exact-b-"+x.id
	want := x.publish(a, "", 1)
	c, _ := x.count(a, "", 4, &want)
	x.stop(c)
	ctx := x.ctx()
	for _, name := range []string{a + ".checkpoints", a + ".dlq"} {
		if _, err := x.admin.PartitionCount(ctx, name); err != nil {
			t.Errorf("derived topic %s: %v", name, err)
		}
	}
	if !strings.Contains(c.Output(), "topic_id=") {
		t.Errorf("the counter did not log the votes topic's id\n%s", testbed.Tail(c.Output(), 20))
	}
	oldID, err := x.admin.TopicID(ctx, a)
	if err != nil || oldID == (kafkaio.TopicID{}) {
		t.Fatalf("topic id of %s: %x %v", a, oldID, err)
	}

	admin, closeAdmin := testbed.KafkaAdmin(x.k.Addr)
	defer closeAdmin()
	if _, err := admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{a}}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, x.admin, a)
	want = x.publish(a, a+".checkpoints", 2)
	c, _ = x.count(a, a+".checkpoints", 4, &want)
	x.stop(c)
	if n := strings.Count(c.Output(), `msg="checkpoint ignored: counting the partition from its start"`); n != 4 || !strings.Contains(c.Output(), "deleted and made again") {
		t.Errorf("topic made again: %d checkpoints ignored (want 4, as made again)\n%s", n, testbed.Tail(c.Output(), 30))
	}

	want = x.publish(b, a+".checkpoints", 3)
	c, _ = x.count(b, a+".checkpoints", 4, &want)
	x.stop(c)
	ignored := regexp.MustCompile(`msg="checkpoint ignored: counting the partition from its start".*it counts topic \\"` + a + `\\"`)
	if n := len(ignored.FindAllString(c.Output(), -1)); n != 4 {
		t.Errorf("topic b: %d checkpoints of topic a ignored, want 4\n%s", n, testbed.Tail(c.Output(), 30))
	}
}

// keysAndPartitions: on election 4's topic, kcat writes valid votes with
// another scheme's keys (all counted), retries of votestream's own keys of
// both formats (duplicates), and votes of producers past the bounds
// (rejected); then a partition added to the votes topic alone stops the
// counter, and added to both is counted.
func (x *exactRig) keysAndPartitions(t *testing.T) {
	x.t = t
	topic := "exact-keys-" + x.id
	want := x.publish(topic, "", 4)
	c, addr := x.count(topic, "", 4, &want)

	var lines []string
	add := func(key string, counted bool) {
		lines = append(lines, key+"\t"+exactVote)
		if counted {
			addExactVote(&want)
		}
	}
	for _, k := range []string{"precinct-7/12", "precinct-7/5", "precinct-7/7", "precinct-7/30", "precinct-7/1"} {
		add(k, true)
	}
	first := Kcat(t, nil, "-C", "-b", x.k.Addr, "-t", topic, "-p", "0", "-o", "0", "-c", "1", "-e", "-q", "-f", "%k")
	prod, seq, ok := kafkaio.Sequence([]byte(first), nil)
	if !ok || !strings.HasPrefix(first, kafkaio.SeqKeyPrefix) {
		t.Fatalf("the producer's key %q has no sequence", first)
	}
	add(first, false)                           // a retry of the first vote
	add(fmt.Sprintf("%s/%d", prod, seq), false) // the same, as producers before the prefix keyed it
	add(string(kafkaio.AppendSeqKey(nil, []byte(strings.Repeat("x", 300)), 0)), false)
	// The partition knows one producer: 63 more fill it, the next is one
	// too many.
	for i := range 64 {
		add(string(kafkaio.AppendSeqKey(nil, fmt.Appendf(nil, "other-%d", i), 0)), i < 63)
	}
	Kcat(t, strings.NewReader(strings.Join(lines, "\n")+"\n"), "-P", "-b", x.k.Addr, "-t", topic, "-p", "0", "-K", "\t")
	got := WaitCounted(t, func() []string { return []string{addr} }, 4, want.Total(), time.Second, time.Minute)
	CheckTally(t, "third-party keys", &got.Tally, &want)
	if got.Rejected["duplicate"] != 2 || got.Rejected["producer"] != 2 {
		t.Errorf("rejected %v, want 2 duplicate and 2 producer", got.Rejected)
	}

	// A partition added to the votes topic alone: the counter stops.
	addPartitions(t, x.k.Addr, topic, 5)
	if err := c.Wait(time.Minute); err == nil {
		t.Errorf("counter exited 0 after a votes partition without checkpoint partition was added")
	}
	if !strings.Contains(c.Output(), "votes partition 4 of "+topic+" has no checkpoint partition") {
		t.Errorf("no line says partition 4 lacks a checkpoint partition\n%s", testbed.Tail(c.Output(), 20))
	}
	// Added to the checkpoint topic too: its votes are counted.
	addPartitions(t, x.k.Addr, topic+".checkpoints", 5)
	Kcat(t, strings.NewReader("new-partition\t"+exactVote+"\n"), "-P", "-b", x.k.Addr, "-t", topic, "-p", "4", "-K", "\t")
	addExactVote(&want)
	c, _ = x.count(topic, "", 5, &want)
	x.stop(c)
}

// deletedRecords: a counter of election 5 stops; votes are written to
// partition 1 and deleted (kafka-delete-records) before any counter reads
// them; a counter started again counts the other partitions but stops
// partition 1's reader at the hole, and says so: log, metric, readiness.
// The topic keeps records 1 hour, which the counter warns about at start.
func (x *exactRig) deletedRecords(t *testing.T) {
	x.t = t
	topic := "exact-deleted-" + x.id
	ctx := x.ctx()
	admin, closeAdmin := testbed.KafkaAdmin(x.k.Addr)
	defer closeAdmin()
	if _, err := admin.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 4, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}}}}}); err != nil {
		t.Fatal(err)
	}
	want := x.publish(topic, "", 5)
	c, _ := x.count(topic, "", 4, &want)
	x.stop(c)
	if !strings.Contains(c.Output(), `the votes topic deletes records`) || !strings.Contains(c.Output(), "retention.ms=3600000") {
		t.Errorf("no warning that the votes topic deletes records\n%s", testbed.Tail(c.Output(), 30))
	}
	Kcat(t, strings.NewReader(strings.Repeat("k\t"+exactVote+"\n", 10)), "-P", "-b", x.k.Addr, "-t", topic, "-p", "1", "-K", "\t")
	_, end, err := x.admin.Offsets(ctx, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	x.deleteRecords(topic, 1, end)

	c = Start(t, "counter-"+topic, x.bin.Counter, x.vars(topic, "")...)
	addr := c.MetricsAddr(t)
	c.WaitOutput(t, reMatch(`msg="partition reader stopped.*partition=1 .*were deleted`), time.Minute)
	deadline := time.Now().Add(30 * time.Second)
	for {
		stopped, ready := readerStopped(ctx, addr, "1"), isReady(ctx, addr)
		if stopped && !ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition 1: reader stopped %v, replica ready %v: want stopped and not ready", stopped, ready)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The other partitions count on; partition 1 stays at its checkpoint.
	got := WaitCounted(t, func() []string { return []string{addr} }, 4, want.Total(), time.Second, time.Minute)
	CheckTally(t, "after the hole", &got.Tally, &want)
	x.stop(c)
}

// transactions: a transactional producer (the Java client) commits three
// votes and aborts two, so partition 0 ends in an abort marker: three are
// counted and the checkpoint reaches the partition's end.
func (x *exactRig) transactions(t *testing.T) {
	x.t = t
	topic := "exact-txn-" + x.id
	ctx := x.ctx()
	if _, err := x.admin.EnsureTopics(ctx, kafkaio.Topics(exactKafka(x.k.Addr, topic))); err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("C\t"+exactVote+"\n", 3) + strings.Repeat("A\t"+exactVote+"\n", 2)
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	java := testbed.KafkaJava(x.k.lib, "256m", filepath.Join(root, "e2e", "testdata", "TxnVotes.java"), x.k.Addr, topic, "0", "txn-"+x.id)
	jctx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	cmd := exec.CommandContext(jctx, java.Path, java.Args[1:]...)
	cmd.Stdin = strings.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "transactions done") {
		t.Fatalf("transactional producer: %v\n%s", err, out)
	}
	_, end, err := x.admin.Offsets(ctx, topic, 0)
	if err != nil || end != 7 { // 3 votes, a commit marker, 2 votes, an abort marker
		t.Fatalf("partition 0 ends at %d (%v), want 7", end, err)
	}
	var want vote.Tally
	for range 3 {
		addExactVote(&want)
	}
	c, addr := x.count(topic, "", 4, &want)
	deadline := time.Now().Add(30 * time.Second)
	for offset(ctx, addr, "0") != end {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0's checkpoint is at %d, want its end %d (past the abort marker)", offset(ctx, addr, "0"), end)
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.stop(c)
}

// restoring: on the transactions' topic, a checkpoint written before
// checkpoints named their topic is restored from the default checkpoint
// topic; a checkpoint of another partition stops the counter in one line.
func (x *exactRig) restoring(t *testing.T) {
	x.t = t
	topic := "exact-txn-" + x.id
	ctx := x.ctx()
	// Version 2: the same bytes without the topic and its id. It says
	// partition 1 (still empty) counted five votes.
	old := checkpoint.State{Partition: 1, Owner: "an earlier counter"}
	var want vote.Tally
	for range 3 {
		addExactVote(&want)
	}
	for range 5 {
		addExactVote(&old.Tally)
		addExactVote(&want)
	}
	b, err := old.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)-1-16]
	b[4] = 2
	x.writeCheckpoint(ctx, topic, 1, b)
	c, _ := x.count(topic, "", 4, &want)
	x.stop(c)

	wrong := checkpoint.State{Topic: topic, Partition: 3}
	if b, err = wrong.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	x.writeCheckpoint(ctx, topic, 2, b)
	c = Start(t, "counter-"+topic, x.bin.Counter, x.vars(topic, "")...)
	if err := c.Wait(time.Minute); err == nil || !strings.Contains(c.Output(), "is for partition 3: corrupt checkpoint") {
		t.Errorf("a checkpoint of partition 3 in partition 2: exit %v, want an error saying so\n%s", err, testbed.Tail(c.Output(), 20))
	}
	if n := strings.Count(c.Output(), "load checkpoint failed, retrying"); n > 0 {
		t.Errorf("the corrupt checkpoint was retried %d times", n)
	}
}

// writeCheckpoint writes b as the last checkpoint of topic's partition p.
func (x *exactRig) writeCheckpoint(ctx context.Context, topic string, p int, b []byte) {
	x.t.Helper()
	if err := x.admin.ProduceMessages(ctx, topic+config.CheckpointSuffix, p, 0, []kafkaio.Message{{Key: []byte("partition"), Value: b, Time: time.Now()}}); err != nil {
		x.t.Fatal(err)
	}
}

// exactKafka is the services' Kafka settings on topic, as the tests use
// them (the admin client's topic is unused).
func exactKafka(brokers, topic string) kafkaio.Config {
	return kafkaio.Config{Brokers: strings.Split(brokers, ","), ClientID: "e2e", DialTimeout: 10 * time.Second,
		MetadataMaxAge: time.Second, Topic: topic, CheckpointTopic: topic + config.CheckpointSuffix,
		DLQTopic: topic + config.DLQSuffix, Partitions: 4, ReplicationFactor: 1, CreateTopics: true}
}

// exactVote is a valid vote for Jill Stein, Ohio, 26-40.
const exactVote = `{"vote_id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","timestamp":"2024-11-05T09:46:40.000000Z","state":"Ohio","candidate":"Jill Stein","age_group":"26-40","vote_count":1}`

func addExactVote(t *vote.Tally) {
	c, _ := vote.ParseCandidate([]byte("Jill Stein"))
	s, _ := vote.ParseState([]byte("Ohio"))
	a, _ := vote.ParseAgeGroup([]byte("26-40"))
	t[c][s][a]++
}

// deleteRecords deletes partition p's records before offset with Kafka's
// own kafka-delete-records.
func (x *exactRig) deleteRecords(topic string, p int, before int64) {
	x.t.Helper()
	f := filepath.Join(x.t.TempDir(), "delete.json")
	js := fmt.Sprintf(`{"partitions":[{"topic":%q,"partition":%d,"offset":%d}],"version":1}`, topic, p, before)
	if err := os.WriteFile(f, []byte(js), 0o600); err != nil {
		x.t.Fatal(err)
	}
	cmd := testbed.KafkaJava(x.k.lib, "256m", "org.apache.kafka.tools.DeleteRecordsCommand", "--bootstrap-server", x.k.Addr, "--offset-json-file", f)
	if out, err := cmd.CombinedOutput(); err != nil {
		x.t.Fatalf("kafka-delete-records: %v\n%s", err, out)
	}
}

func addPartitions(t *testing.T, brokers, topic string, n int) {
	t.Helper()
	c, closeAdmin := testbed.KafkaAdmin(brokers)
	defer closeAdmin()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: int32(n)}}})
	if err == nil && len(res.Errors) > 0 {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("add partitions to %s: %v", topic, err)
	}
}

// waitGone waits until topic is deleted.
func waitGone(t *testing.T, c *kafkaio.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := c.PartitionCount(ctx, topic); err != nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s still there", topic)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readerStopped reports whether addr's counter shows partition's reader
// stopped.
func readerStopped(ctx context.Context, addr, partition string) bool {
	return gauge(ctx, addr, "votestream_counter_partition_reader_stopped", partition) == 1
}

func offset(ctx context.Context, addr, partition string) int64 {
	return int64(gauge(ctx, addr, "votestream_counter_partition_offset", partition))
}

// gauge is a gauge's value for one partition, or -1.
func gauge(ctx context.Context, addr, name, partition string) float64 {
	fams, err := testbed.Metrics(ctx, addr, name)
	if err != nil || fams[name] == nil {
		return -1
	}
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "partition" && l.GetValue() == partition {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func isReady(ctx context.Context, addr string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
