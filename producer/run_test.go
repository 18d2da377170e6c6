package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestPublishResumeExact publishes an election in small batches through the
// pipelined writers, stops it midway with a signal, starts it again, then
// starts it a third time once it is complete. The stopped run fails (the
// exit status of an incomplete election), the others succeed. Every partition must hold
// each of its sequence numbers exactly once, in order, and the votes must
// be the generator's, cell by cell.
func TestPublishResumeExact(t *testing.T) {
	const seed, scale = 7, 0.0002
	const partitions = 5
	addr, topic, base := testTopic(t, partitions)
	environ := append(base, "SEED="+strconv.Itoa(seed),
		"SCALE="+strconv.FormatFloat(scale, 'g', -1, 64), "VOTES_PER_BATCH=997")

	// First run: paced, stopped by a signal after a few batches.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, append(environ, "BATCH_INTERVAL=20ms"), io.Discard, io.Discard) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		// Stopped midway, it must fail, so that main exits non-zero.
		if !errors.Is(err, errIncomplete) {
			t.Fatalf("first run stopped midway returned %v, want %v", err, errIncomplete)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("first run did not stop within 30s of its signal")
	}

	// Second run: resumes and publishes the rest as fast as it can.
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	total := want.Total()
	for i, name := range []string{"resumed run", "run after completion"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var out strings.Builder
		err := run(ctx, append(environ, "BATCH_INTERVAL=0"), io.Discard, &out)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := regexp.MustCompile(`msg="election published".* resumed_after=(\d+)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("%s did not log its end:\n%s", name, out.String())
		}
		skipped, _ := strconv.ParseInt(m[1], 10, 64)
		if i == 0 && (skipped == 0 || skipped >= total) {
			t.Errorf("%s skipped %d votes, want some of the %d: the first run should stop midway", name, skipped, total)
		}
		if i == 1 && skipped != total {
			t.Errorf("%s skipped %d votes, want all %d", name, skipped, total)
		}
	}

	got := readTopic(t, addr, topic, partitions, nil)
	if d := got.Diff(&want, 5); len(d) > 0 || got.Total() != want.Total() {
		t.Errorf("topic holds %d votes, want %d; wrong cells: %+v", got.Total(), want.Total(), d)
	}
}

// TestGrownTopicKeepsPartitions publishes part of an election on two
// partitions, grows the topic (and the checkpoint topic, as the counter
// wants) to four, and resumes: the election must stay
// on its two partitions, each sequence number once, the votes the
// generator's cell by cell, and the new partitions empty.
func TestGrownTopicKeepsPartitions(t *testing.T) {
	const seed, scale = 9, 0.0001
	addr, topic, base := testTopic(t, 2)
	environ := append(base, "SEED=9", "SCALE=0.0001", "VOTES_PER_BATCH=500")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, append(environ, "BATCH_INTERVAL=20ms"), io.Discard, io.Discard) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, errIncomplete) {
		t.Fatalf("first run: %v, want it stopped midway", err)
	}

	c, err := kafkaio.New(kafkaio.Config{Brokers: []string{addr}, ClientID: "test", DialTimeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin, closeAdmin := testbed.KafkaAdmin(addr)
	defer closeAdmin()
	gctx, gcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer gcancel()
	res, err := admin.CreatePartitions(gctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}, {Name: topic + ".ckpt", Count: 4}}})
	if err == nil {
		err = errors.Join(slices.Collect(maps.Values(res.Errors))...)
	}
	if err != nil {
		t.Fatalf("grow the topic to 4 partitions: %v", err)
	}

	var out strings.Builder
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, append(environ, "BATCH_INTERVAL=0", "KAFKA_PARTITIONS=4"), io.Discard, &out); err != nil {
		t.Fatalf("resumed run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "topic_partitions=4 election_partitions=2") {
		t.Errorf("the resumed run did not say the election stays on 2 of 4 partitions:\n%s", out.String())
	}
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	got := readTopic(t, addr, topic, 2, nil)
	if d := got.Diff(&want, 5); len(d) > 0 || got.Total() != want.Total() {
		t.Errorf("topic holds %d votes, want %d; wrong cells: %+v", got.Total(), want.Total(), d)
	}
	ends, err := c.EndOffsets(gctx, topic, 4)
	if err != nil {
		t.Fatal(err)
	}
	if ends[2] != 0 || ends[3] != 0 {
		t.Errorf("partitions 2 and 3 hold %d and %d records, want none", ends[2], ends[3])
	}
}

// TestAnotherElectionLogged runs an election to its end, then the same one
// again, then one with another SEED and one with another SCALE on the same
// topic: the first rerun resumes in silence, the other two each say in one
// warning line at start that they append another election, naming it.
func TestAnotherElectionLogged(t *testing.T) {
	_, _, base := testTopic(t, 3)
	const warning = `level=WARN msg="the topic already holds another election`
	for _, tc := range []struct {
		name, seed, scale string
		wantOthers        string // "" for no warning
	}{
		{"first", "7", "0.00005", ""},
		{"same again", "7", "0.00005", ""},
		{"another seed", "8", "0.00005", "[votestream:seed=7,scale=5e-05,partitions=3]"},
		{"another scale", "7", "0.00002", "[votestream:seed=7,scale=5e-05,partitions=3 votestream:seed=8,scale=5e-05,partitions=3]"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var out strings.Builder
		err := run(ctx, append(base, "SEED="+tc.seed, "SCALE="+tc.scale, "BATCH_INTERVAL=0"), io.Discard, &out)
		cancel()
		if err != nil {
			t.Fatalf("%s run: %v", tc.name, err)
		}
		var lines []string
		for l := range strings.Lines(out.String()) {
			if strings.Contains(l, warning) {
				lines = append(lines, l)
			}
		}
		switch {
		case tc.wantOthers == "" && len(lines) > 0:
			t.Errorf("%s run warned of another election:\n%s", tc.name, strings.Join(lines, ""))
		case tc.wantOthers != "" && (len(lines) != 1 || !strings.Contains(lines[0], "other_producer_ids=\""+tc.wantOthers+"\"")):
			t.Errorf("%s run: want one warning naming %s, got %d:\n%s", tc.name, tc.wantOthers, len(lines), out.String())
		}
	}
}

// TestNemesisSeed2UnknownServerError: in the nemesis (seed 2, 2 minutes)
// a producer started again after a kill exited 1 because its ListOffsets
// came back with error -1 (UNKNOWN) while a broker was killed: kafka-go
// reports so a sub-request that failed on its connection, and a broker
// answers so when a request fails inside it. The producer must wait it out
// as it does a partition between leaders, and publish the election exactly.
// kfake answers the first ListOffsets of the topic with -1 here.
func TestNemesisSeed2UnknownServerError(t *testing.T) {
	const seed, scale, partitions = 2, 0.0001, 3
	cluster, addr, topic, environ := testCluster(t, partitions)
	var refused atomic.Int32
	cluster.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		r := req.(*kmsg.ListOffsetsRequest)
		if len(r.Topics) == 0 || r.Topics[0].Topic != topic || refused.Add(1) > 3 {
			return nil, nil, false
		}
		res := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range r.Topics {
			answer := kmsg.NewListOffsetsResponseTopic()
			answer.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewListOffsetsResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = -1 // UNKNOWN_SERVER_ERROR
				answer.Partitions = append(answer.Partitions, p)
			}
			res.Topics = append(res.Topics, answer)
		}
		return res, nil, true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := append(environ, "SEED="+strconv.Itoa(seed), "SCALE="+strconv.FormatFloat(scale, 'g', -1, 64), "BATCH_INTERVAL=0")
	if err := run(ctx, env, io.Discard, io.Discard); err != nil {
		t.Fatalf("producer, its first ListOffsets answered UNKNOWN_SERVER_ERROR: %v", err)
	}
	if n := refused.Load(); n < 3 {
		t.Fatalf("only %d ListOffsets refused: the test did not test", n)
	}
	want, err := votegen.TrueTotals(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		t.Fatal(err)
	}
	got := readTopic(t, addr, topic, partitions, nil)
	if d := got.Diff(&want, 5); len(d) > 0 || got.Total() != want.Total() {
		t.Errorf("topic holds %d votes, want %d; wrong cells: %+v", got.Total(), want.Total(), d)
	}
}

// testTopic starts a kfake cluster for the test and returns its address, a
// fresh topic name and the producer environment for them.
func testTopic(t *testing.T, partitions int) (addr, topic string, environ []string) {
	_, addr, topic, environ = testCluster(t, partitions)
	return addr, topic, environ
}

// testCluster is testTopic with the cluster itself, for tests that steer
// its answers.
func testCluster(t *testing.T, partitions int) (cluster *kfake.Cluster, addr, topic string, environ []string) {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr = cluster.ListenAddrs()[0]
	var r [4]byte
	_, _ = rand.Read(r[:])
	topic = "votes-" + hex.EncodeToString(r[:])
	return cluster, addr, topic, []string{
		"KAFKA_BROKERS=" + addr, "KAFKA_TOPIC=" + topic, "KAFKA_CHECKPOINT_TOPIC=" + topic + ".ckpt",
		"KAFKA_DLQ_TOPIC=" + topic + ".dlq", "KAFKA_PARTITIONS=" + strconv.Itoa(partitions),
		"HTTP_ADDR=127.0.0.1:0", "OUTPUT_DIR=",
	}
}

// TestPublishNight publishes 2024's night: exactly its scaled votes, each
// timestamped with its time of the night, after its state's polls close,
// while the Kafka record carries the time it was published.
func TestPublishNight(t *testing.T) {
	const partitions = 3
	cfg := votegen.Config{Seed: 3, Scale: 0.0001, IncludeDC: true, Election: votegen.Election2024}
	addr, topic, base := testTopic(t, partitions)
	environ := append(base, "SEED=3", "SCALE=0.0001", "INCLUDE_DC=true", "ELECTION=2024", "BATCH_INTERVAL=0")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, environ, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first, last := votegen.Night()
	got := readTopic(t, addr, topic, partitions, func(m *kafkaio.FetchedRecord, v *vote.Vote) {
		at := time.UnixMicro(v.Time)
		if !at.After(votegen.PollClose(v.State)) || at.After(last) || at.Before(first) {
			t.Fatalf("%s: vote at %s, polls close %s", v.State, at.UTC(), votegen.PollClose(v.State))
		}
		if m.Time.Before(start.Add(-time.Second)) {
			t.Fatalf("record time %s, before the run started", m.Time)
		}
	})
	if d := got.Diff(&want, 5); len(d) > 0 || got.Total() != want.Total() {
		t.Errorf("topic holds %d votes, want %d; wrong cells: %+v", got.Total(), want.Total(), d)
	}
}

// readTopic reads every record of every partition, checks each partition
// holds its sequence numbers once each and in order, and tallies the votes.
// check, if not nil, sees every record and its vote.
func readTopic(t *testing.T, addr, topic string, partitions int, check func(*kafkaio.FetchedRecord, *vote.Vote)) vote.Tally {
	t.Helper()
	c, err := kafkaio.New(kafkaio.Config{Brokers: []string{addr}, ClientID: "test", DialTimeout: 10 * time.Second},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := c.EndOffsets(ctx, topic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	var tally vote.Tally
	errDone := errors.New("done")
	for part := range partitions {
		next := int64(part) // the sequence number the partition must hold next
		if ends[part] == 0 {
			t.Fatalf("partition %d is empty", part)
		}
		err := c.Consume(ctx, topic, part, 0, kafkaio.ConsumeOptions{}, func(f *kafkaio.Fetch) error {
			for m := f.Next(); m != nil; m = f.Next() {
				_, seq, ok := kafkaio.Sequence(m.Key, m.Headers)
				if !ok || seq != next || m.Headers != nil {
					t.Fatalf("partition %d offset %d: sequence %d (key %q, %d headers), want %d", part, m.Offset, seq, m.Key, len(m.Headers), next)
				}
				next += int64(partitions)
				var v vote.Vote
				if err := vote.Decode(m.Value, &v); err != nil {
					t.Fatalf("partition %d offset %d: %v", part, m.Offset, err)
				}
				if check != nil {
					check(m, &v)
				}
				tally.Add(&v)
			}
			if f.Last+1 >= ends[part] {
				return errDone
			}
			return f.Err()
		})
		if !errors.Is(err, errDone) {
			t.Fatalf("read partition %d: %v", part, err)
		}
	}
	return tally
}

// TestParseSeed checks SEED's forms: a number fixes the election, random
// (or empty) draws a new one each time, anything else is an error.
func TestParseSeed(t *testing.T) {
	if got, err := parseSeed("20241105"); err != nil || got != 20241105 {
		t.Errorf(`parseSeed("20241105") = %d, %v; want 20241105`, got, err)
	}
	for _, s := range []string{"random", ""} {
		a, err1 := parseSeed(s)
		b, err2 := parseSeed(s)
		if err1 != nil || err2 != nil || a == b {
			t.Errorf("parseSeed(%q) twice = %d (%v), %d (%v); want two different seeds", s, a, err1, b, err2)
		}
	}
	if _, err := parseSeed("lucky"); err == nil || !strings.Contains(err.Error(), "or random") {
		t.Errorf(`parseSeed("lucky") error %v, want one saying a number or random`, err)
	}
}

// TestSettle checks the producer id and partition count a resume takes
// from the last records found in each partition of a 3-partition topic.
func TestSettle(t *testing.T) {
	el := votegen.Config{Seed: 9, Scale: 0.0001, Election: votegen.ElectionSeed}
	none := found{seq: -1}
	for _, tc := range []struct {
		name    string
		last    []found
		id      string // "" for an error
		parts   int
		wantErr string
	}{
		{"new election", []found{none, none, none}, "votestream:seed=9,scale=0.0001,partitions=3", 3, ""},
		{"same count", []found{{"votestream:seed=9,scale=0.0001,partitions=3", 3}, none, none}, "votestream:seed=9,scale=0.0001,partitions=3", 3, ""},
		{"grown from 2", []found{{"votestream:seed=9,scale=0.0001,partitions=2", 4}, {"votestream:seed=9,scale=0.0001,partitions=2", 5}, none}, "votestream:seed=9,scale=0.0001,partitions=2", 2, ""},
		{"id without a count", []found{{"votestream:seed=9,scale=0.0001", 3}, none, none}, "votestream:seed=9,scale=0.0001", 3, ""},
		{"two counts", []found{{"votestream:seed=9,scale=0.0001,partitions=2", 4}, {"votestream:seed=9,scale=0.0001,partitions=3", 4}, none}, "", 0, "several producer ids"},
		{"beyond its count", []found{{"votestream:seed=9,scale=0.0001,partitions=1", 4}, none, {"votestream:seed=9,scale=0.0001,partitions=1", 5}}, "", 0, "votes in partition 2"},
	} {
		p := &publisher{partitions: 3, topic: "votes", election: el, log: slog.New(slog.DiscardHandler)}
		err := p.settle(tc.last)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || p.id != tc.id || p.partitions != tc.parts || len(p.last) != tc.parts):
			t.Errorf("%s: id %q, %d partitions (%d last), error %v; want %q, %d", tc.name, p.id, p.partitions, len(p.last), err, tc.id, tc.parts)
		}
	}
}
