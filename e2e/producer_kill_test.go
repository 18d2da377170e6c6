package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// readTopic reads every record of every partition of topic, in log order,
// bounded by timeout.
func readTopic(t *testing.T, brokers, topic string, partitions int, timeout time.Duration) map[int][]kafkaio.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := kafkaio.New(kafkaio.Config{Brokers: strings.Split(brokers, ","), DialTimeout: 10 * time.Second, ClientID: "e2e"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := make(map[int][]kafkaio.Record, partitions)
	for p := range partitions {
		// One window as large as the partition: fn sees it from the end.
		err := c.ScanBack(ctx, topic, p, 1<<40, func(r kafkaio.Record) bool {
			out[p] = append(out[p], r)
			return true
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
		slices.Reverse(out[p])
	}
	return out
}

// sequence is a record's sequence number, from its key (or, for records of
// earlier producers, its headers); -1 when it has none.
func sequence(r *kafkaio.Record) int64 {
	if _, seq, ok := kafkaio.Sequence(r.Key, r.Headers); ok {
		return seq
	}
	return -1
}

// TestChaosProducerKill kills the producer with SIGKILL at random moments
// and restarts it with the same SEED each time: it must resume where the
// log ends, so the topic holds every vote exactly once (read back whole:
// vote IDs unique, sequences 0..N-1 each once in their partition, every
// cell and quota exact), the JSON files hold the same votes, and the
// counters count them exactly with no duplicate to reject.
func TestChaosProducerKill(t *testing.T) { testProducerKill(t, StartBroker(t)) }

// TestKafkaProducerKill is TestChaosProducerKill on one Apache Kafka node.
func TestKafkaProducerKill(t *testing.T) { testProducerKill(t, StartKafka(t, KafkaOptions{})) }

func testProducerKill(t *testing.T, cluster Bootstrapper) {
	bin := Binaries(t)
	env := NewEnv(t, cluster, pick(6, 12))
	el := newElection(t, 3004)
	outDir := t.TempDir()
	f := newFleet(t, env)
	f.start("a")
	vars := env.Vars(el.producerVars(pick(20*time.Second, 60*time.Second), "OUTPUT_DIR="+outDir)...)
	prod := Start(t, "producer", bin.Producer, vars...)

	kills := pick(3, 5)
	total := el.want.Total()
	var longest time.Duration
	resumedRE := regexp.MustCompile(`msg="resuming: votes of this election already in the topic are skipped" .*votes=(\d+)`)
	for i := range kills {
		// Somewhere in this kill's share of the run.
		share := total / int64(kills+1)
		waitPublished(t, prod, share*int64(i)+rand.Int64N(share)+1, 2*time.Minute)
		if prod.Exited() {
			t.Fatalf("the producer finished before kill %d: pace it slower", i+1)
		}
		at := published(prod)
		killed := time.Now()
		prod.Kill()
		prod = Start(t, fmt.Sprintf("producer-%d", i+1), bin.Producer, vars...)
		skipped, _ := strconv.ParseInt(prod.WaitOutput(t, resumedRE, time.Minute), 10, 64)
		if skipped < at {
			t.Errorf("kill %d: last progress said %d published, but the restart skips only %d", i+1, at, skipped)
		}
		prod.WaitOutput(t, progressRE, time.Minute)
		d := time.Since(killed)
		longest = max(longest, d)
		t.Logf("kill %d at %d published: restart skipped %d, publishing again after %s", i+1, at, skipped, d.Round(time.Millisecond))
	}
	waitProducer(t, prod)

	// The topic, read back whole: no produce was retried, so no record
	// repeats.
	topicTally, repeats := readBack(t, env, total)
	if repeats != 0 {
		t.Errorf("%d records repeated in the topic, want none", repeats)
	}
	CheckTally(t, "topic vs generator", &topicTally, &el.want)
	for s := range vote.NumStates {
		var got, want int64
		for c := range vote.NumCandidates {
			got += topicTally.StateTotal(vote.Candidate(c), vote.State(s))
			want += el.want.StateTotal(vote.Candidate(c), vote.State(s))
		}
		if got != want {
			t.Errorf("quota of %s: topic has %d votes, want %d", vote.State(s), got, want)
		}
	}

	files, nfiles, err := ReadVoteFiles(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := int((total + perBatch() - 1) / perBatch()); nfiles != want {
		t.Errorf("got %d JSON files, want %d", nfiles, want)
	}
	CheckTally(t, "JSON files vs generator", &files, &el.want)

	finish(t, f, env, &el.want, chaosRow{Fault: "producer SIGKILL, restart with same SEED", Broker: brokerName(cluster), Injected: kills, LongestRecovery: longest,
		RecoveryMeaning: "kill to restarted producer publishing again",
		ExtraNotes:      "topic read back: every vote once, sequences contiguous per partition, quotas exact; JSON files exact"}, nil)
	f.stopAll()
}

// readBack reads the votes topic whole and checks it holds the election's
// total votes, each once: in every partition the producer's sequences
// p, p+P, ... in order, except that a produce retried after a lost
// acknowledgement may repeat a run of records already there (the same
// sequence, the same vote). It returns the tally of the votes and how many
// records were such repeats: the counters must reject exactly those as
// duplicates.
func readBack(t *testing.T, env Env, total int64) (tally vote.Tally, repeats int64) {
	t.Helper()
	ids := make(map[string]int64, total)
	n := int64(0)
	P := int64(env.Partitions)
	for p, ms := range readTopic(t, env.Brokers, env.Topic, env.Partitions, time.Minute) {
		next := int64(p)
		for i := range ms {
			m := &ms[i]
			var v fileVote
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatalf("%d/%d: %v", p, m.Offset, err)
			}
			seq := sequence(m)
			switch {
			case seq >= 0 && seq < next && (seq-int64(p))%P == 0:
				if ids[v.VoteID] != seq+1 {
					t.Fatalf("%d/%d: sequence %d repeated with another vote (%s)", p, m.Offset, seq, v.VoteID)
				}
				repeats++
				continue
			case seq != next:
				t.Fatalf("%d/%d: sequence %d (key %q), want %d: a vote skipped", p, m.Offset, seq, m.Key, next)
			}
			if _, dup := ids[v.VoteID]; dup {
				t.Errorf("%d/%d: vote %s is in the topic under two sequences", p, m.Offset, v.VoteID)
			}
			ids[v.VoteID] = seq + 1
			next += P
			c, ok1 := vote.ParseCandidate([]byte(v.Candidate))
			s, ok2 := vote.ParseState([]byte(v.State))
			a, ok3 := vote.ParseAgeGroup([]byte(v.AgeGroup))
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("%d/%d: invalid vote %+v", p, m.Offset, v)
			}
			tally[c][s][a]++
			n++
		}
	}
	if n != total {
		t.Errorf("topic holds %d votes, want %d", n, total)
	}
	return tally, repeats
}
