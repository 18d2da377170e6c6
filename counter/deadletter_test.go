package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// A retried run of duplicates is one dead letter with its coordinates, not
// a copy per record; a run ends where the offsets or the producer do.
func TestDuplicateRunsOneLetter(t *testing.T) {
	recs := applyRecords(t, 100)
	p := &partition{id: 3}
	for i := range recs {
		p.applyRecord("votes", &recs[i])
	}
	// Offsets 100-149: sequences 0-49 again; 150: a new vote; 151: 3 again.
	for i := range 50 {
		r := recs[i]
		r.Offset = int64(100 + i)
		p.applyRecord("votes", &r)
	}
	more := applyRecords(t, 101)
	fresh := more[100]
	fresh.Offset = 150
	p.applyRecord("votes", &fresh)
	again := recs[3]
	again.Offset = 151
	p.applyRecord("votes", &again)
	p.state.Offset = 152

	snap := p.snapshot("votes")
	if got := snap.seen[vote.ReasonDuplicate]; got != 51 {
		t.Errorf("seen %d duplicates, want 51", got)
	}
	if got := snap.state.Rejected[vote.ReasonDuplicate]; got != 51 {
		t.Errorf("checkpoint rejects %d duplicates, want 51", got)
	}
	want := []runSummary{
		{"duplicate", "votes", 3, 100, 149, 50, "votestream:seed=7,scale=0.005", 0, 49},
		{"duplicate", "votes", 3, 151, 151, 1, "votestream:seed=7,scale=0.005", 3, 3},
	}
	if len(snap.dead) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(snap.dead), len(want))
	}
	for i, m := range snap.dead {
		var got runSummary
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatal(err)
		}
		if got != want[i] {
			t.Errorf("letter %d: got %+v, want %+v", i, got, want[i])
		}
		if h := header(m, headerSourceOffset); h != fmt.Sprint(want[i].FirstOffset) {
			t.Errorf("letter %d: source offset header %q, want %d", i, h, want[i].FirstOffset)
		}
		if h := header(m, headerRunLastOffset); h != fmt.Sprint(want[i].LastOffset) {
			t.Errorf("letter %d: last offset header %q, want %d", i, h, want[i].LastOffset)
		}
	}
}

func header(m kafkaio.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// bigLetter is a rejected record with a key of n bytes: keys are copied
// whole into dead letters.
func bigLetter(offset int64, n int) kafkaio.Message {
	rec := kafkaio.FetchedRecord{Offset: offset, Key: make([]byte, n), Value: []byte("not json")}
	return deadLetter("votes", 0, &rec, vote.ReasonJSON)
}

// Pending dead letters stay within their bytes whatever comes, and after
// a failed write is put back: past the bound letters are reduced, then
// lost, and counted.
func TestPendingDeadLettersBoundedInBytes(t *testing.T) {
	p := &partition{}
	const n = 200
	for i := range n {
		p.dead.add(bigLetter(int64(i), 100<<10))
	}
	if p.dead.bytes > maxPendingDeadLetterBytes {
		t.Fatalf("pending %d bytes, over %d", p.dead.bytes, maxPendingDeadLetterBytes)
	}
	dead, lost := p.dead.take()
	var reduced int
	for _, m := range dead {
		if reducedWhy(m) != "" {
			reduced++
			if header(m, headerSourceOffset) == "" || header(m, headerReason) != "json" || m.Key != nil {
				t.Errorf("reduced letter %+v: want its coordinates and reason only", m.Headers)
			}
		}
	}
	if reduced == 0 || int64(len(dead))+lost != n {
		t.Errorf("%d kept (%d reduced), %d lost: want some reduced, all %d accounted for", len(dead), reduced, lost, n)
	}
	// A write failed: everything goes back, with newer letters behind.
	for i := range n {
		p.dead.add(bigLetter(int64(n+i), 100<<10))
	}
	p.requeueDead(dead)
	if p.dead.bytes > maxPendingDeadLetterBytes {
		t.Errorf("after requeue: pending %d bytes, over %d", p.dead.bytes, maxPendingDeadLetterBytes)
	}
	again, lost2 := p.dead.take()
	if int64(len(again))+lost2 != int64(len(dead))+n {
		t.Errorf("after requeue: %d kept, %d lost of %d", len(again), lost2, len(dead)+n)
	}
	if len(again) > 0 && header(again[0], headerSourceOffset) != "0" {
		t.Errorf("requeued letters not first: %s", header(again[0], headerSourceOffset))
	}
	// And the count bound holds with small letters.
	for i := range maxPendingDeadLetters + 10 {
		p.dead.add(bigLetter(int64(i), 0))
	}
	if got, lost := p.dead.take(); len(got) != maxPendingDeadLetters || lost != 10 {
		t.Errorf("%d kept, %d lost; want %d and 10", len(got), lost, maxPendingDeadLetters)
	}
}

// Requests are cut under the budget; a letter larger than it goes alone.
func TestChunksUnderBudget(t *testing.T) {
	var msgs []kafkaio.Message
	for i := range 100 {
		msgs = append(msgs, bigLetter(int64(i), 1000))
	}
	msgs = append(msgs, bigLetter(100, 50000))
	budget := requestBudget(20000)
	var n int
	for _, c := range chunks(msgs, budget) {
		size := 0
		for i := range c {
			size += letterSize(&c[i])
		}
		if size > budget && len(c) > 1 {
			t.Errorf("chunk of %d letters, %d bytes: over %d", len(c), size, budget)
		}
		n += len(c)
	}
	if n != len(msgs) {
		t.Errorf("chunks hold %d letters, want %d", n, len(msgs))
	}
}

// A partition is stuck once its checkpoints have failed for the bound,
// named with its error, and no longer once one succeeds.
func TestStallsBound(t *testing.T) {
	s := newStalls(30 * time.Second)
	t0 := time.Now()
	s.failed(4, errors.New("write checkpoint: [10] Message Size Too Large"), t0)
	s.failed(4, errors.New("write checkpoint: [10] Message Size Too Large again"), t0.Add(20*time.Second))
	if got := s.stuck(t0.Add(29 * time.Second)); len(got) != 0 {
		t.Errorf("stuck after 29s: %v", got)
	}
	got := s.stuck(t0.Add(31 * time.Second))
	if len(got) != 1 || got[0].partition != 4 || !strings.Contains(got[0].err, "again") {
		t.Errorf("stuck after 31s: %+v, want partition 4 with the last error", got)
	}
	s.ok(4)
	if got := s.stuck(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("stuck after a success: %v", got)
	}
}

// REPLICA_ID defaults to the host name and a random suffix, different for
// each process; when set it is used as it is.
func TestReplicaIDDefault(t *testing.T) {
	host, _ := os.Hostname()
	re := regexp.MustCompile(`msg=starting .*replica=(\S+)`)
	id := func(extra ...string) string {
		var out strings.Builder
		env := append([]string{"KAFKA_BROKERS=127.0.0.1:1", "KAFKA_DIAL_TIMEOUT=1s", "HTTP_ADDR=127.0.0.1:0"}, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := run(ctx, env, io.Discard, &out); err == nil {
			t.Fatal("run with no broker: no error")
		}
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no starting line:\n%s", out.String())
		}
		return m[1]
	}
	a, b := id(), id()
	idRE := regexp.MustCompile(`^` + regexp.QuoteMeta(host) + `-[0-9a-f]{6}$`)
	if !idRE.MatchString(a) || !idRE.MatchString(b) || a == b {
		t.Errorf("default replica ids %q and %q: want %s-<6 hex digits>, each its own", a, b, host)
	}
	if got := id("REPLICA_ID=night-shift"); got != "night-shift" {
		t.Errorf("REPLICA_ID=night-shift: replica %q", got)
	}
}

// A checkpoint partition that refuses every write (here as too large, the
// stall of issue 26) leaves its partition stuck: after stuckAfter /readyz
// and partition_stuck_seconds name it and the error, the other partitions
// go on, and once writes are accepted again everything is counted and the
// counter is ready. It takes stuckAfter and a few seconds.
func TestStuckPartitionVisible(t *testing.T) {
	e := newTestElection(t, 8, 2, "BATCH_MAX_WAIT=200ms")
	var refuse atomic.Bool
	refuse.Store(true)
	refuseProduce(e.cluster, 10, func(topic string, partition int32) bool { // MESSAGE_TOO_LARGE
		return refuse.Load() && topic == "ckpt" && partition == 1
	})
	c := startCounter(t, e.env, "a")
	e.publish(t)
	start := time.Now()
	body := waitReadyz(t, c.addr, http.StatusServiceUnavailable, stuckAfter+30*time.Second)
	if took := time.Since(start); took < stuckAfter-time.Second {
		t.Errorf("stuck after %s, before the %s bound", took, stuckAfter)
	}
	if !strings.Contains(body, "partition 1:") || !strings.Contains(body, "Message Size Too Large") {
		t.Errorf("/readyz says %q: want partition 1 and its error", body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	fams, err := testbed.Metrics(ctx, c.addr, "votestream_counter_partition_stuck_seconds")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	ms := fams["votestream_counter_partition_stuck_seconds"].GetMetric()
	if len(ms) != 1 || ms[0].GetLabel()[1].GetValue() != "1" || !strings.Contains(ms[0].GetLabel()[0].GetValue(), "Message Size Too Large") {
		t.Errorf("partition_stuck_seconds: %v, want partition 1 with its error", ms)
	}
	refuse.Store(false)
	waitReadyz(t, c.addr, http.StatusOK, 30*time.Second)
	waitExact(t, &e.want, c.addr)
	c.stop(t)
}

// refuseProduce answers code to every produce request from now on whose
// topic and partition refuse names, so the broker writes none of it.
// kafka-go asks for one partition of one topic in each.
func refuseProduce(cluster *kfake.Cluster, code int16, refuse func(topic string, partition int32) bool) {
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || !refuse(r.Topics[0].Topic, r.Topics[0].Partitions[0].Partition) {
			return nil, nil, false
		}
		res := r.ResponseKind().(*kmsg.ProduceResponse)
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = r.Topics[0].Topic
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition = r.Topics[0].Partitions[0].Partition
		rp.ErrorCode = code
		rt.Partitions = append(rt.Partitions, rp)
		res.Topics = append(res.Topics, rt)
		return res, nil, true
	})
}

// waitReadyz waits until /readyz answers code and returns its body.
func waitReadyz(t *testing.T, addr string, code int, timeout time.Duration) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		last = fmt.Sprintf("%d %s", res.StatusCode, b)
		if res.StatusCode == code {
			return string(b)
		}
	}
	t.Fatalf("/readyz not %d within %s: last %s", code, timeout, last)
	return ""
}

// A dead-letter topic the counter may not write (a missing ACL) costs the
// letters, counted as lost, and nothing else: counting goes on, exact,
// with every rejected record counted by reason.
func TestDLQDeniedCountsOn(t *testing.T) {
	e := newTestElection(t, 9, 2, "BATCH_MAX_WAIT=200ms")
	refuseProduce(e.cluster, 29, func(topic string, _ int32) bool { return topic == "dlq" }) // TOPIC_AUTHORIZATION_FAILED
	c := startCounter(t, e.env, "a")
	e.publish(t)
	client, err := kafkaio.New(kafkaio.Config{Brokers: []string{e.brokers}, DialTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const bad = 5
	for i := range bad {
		if err := client.ProduceMessages(t.Context(), "votes", i%e.parts, 0, []kafkaio.Message{{Value: []byte("not a vote")}}); err != nil {
			t.Fatal(err)
		}
	}
	got := waitExact(t, &e.want, c.addr)
	for deadline := time.Now().Add(30 * time.Second); got.Rejected["json"] != bad && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, _ = testbed.Sum(ctx, []string{c.addr})
		cancel()
	}
	if got.Rejected["json"] != bad {
		t.Errorf("rejected json: %d, want %d", got.Rejected["json"], bad)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	fams, err := testbed.Metrics(ctx, c.addr, "votestream_counter_dead_letters_lost_total")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if n := fams["votestream_counter_dead_letters_lost_total"].GetMetric()[0].GetCounter().GetValue(); n != bad {
		t.Errorf("dead letters lost: %v, want %d", n, bad)
	}
	if !strings.Contains(c.out.String(), `msg="dead letters lost`) {
		t.Error("no log line says the dead letters were lost")
	}
	c.stop(t)
}
