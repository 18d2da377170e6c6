package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/vote"
)

// needSpark skips a test when pyspark or its jars are missing, except in
// CI, where they must be there (.ci/run runs make spark-deps).
func needSpark(t *testing.T) testbed.Spark {
	t.Helper()
	RequireTool(t, "java")
	s, err := testbed.FindSpark(context.Background())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return s
}

// TestSparkSeedFiles runs the seed notebook's own streaming query
// (deploy/spark/votes_files.py: its schema, readStream.json, foreachBatch
// with groupBy("candidate").sum("vote_count") accumulated) with
// trigger(availableNow=True), again and again, over the folder the producer
// writes while it writes it. Its totals per candidate, and per candidate
// and state, must be the generator's.
func TestSparkSeedFiles(t *testing.T) {
	spark := needSpark(t)
	bin := Binaries(t)
	env := NewEnv(t, StartBroker(t), 4)
	el := newElection(t, 3012)
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "totals.json")
	job := StartCmd(t, "spark votes_files.py", spark.Cmd("votes_files.py", "--dir", dir,
		"--expect", strconv.FormatInt(el.want.Total(), 10), "--idle", "120", "--checkpoint", t.TempDir(), "--out", out))
	// Spark is up once its first run over the empty folder is done; only
	// then does the producer start, so Spark reads files as they land.
	job.WaitOutput(t, regexp.MustCompile(`watching `), 3*time.Minute)
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(15*time.Second, "OUTPUT_DIR="+dir)...)...)
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	if err := job.Wait(6 * time.Minute); err != nil {
		t.Fatalf("spark job: %v\n%s", err, testbed.Tail(job.Output(), 40))
	}
	var got struct {
		Candidate      map[string]int64 `json:"candidate"`
		CandidateState map[string]int64 `json:"candidate_state"`
		Votes, Batches int64
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	checkSeedTotals(t, got.Candidate, got.CandidateState, &el.want)
	t.Logf("Spark counted %d votes from the producer's files in %d micro-batches", got.Votes, got.Batches)
}

// checkSeedTotals compares per-candidate and per-candidate-and-state totals
// keyed by the seed's names ("candidate", "candidate|state") with want.
func checkSeedTotals(t *testing.T, byCand, byState map[string]int64, want *vote.Tally) {
	t.Helper()
	if len(byCand) != vote.NumCandidates {
		t.Errorf("%d candidates in Spark's totals, want %d: %v", len(byCand), vote.NumCandidates, byCand)
	}
	for ci, c := range vote.Candidates() {
		if got, w := byCand[c.Name], want.CandidateTotal(vote.Candidate(ci)); got != w {
			t.Errorf("%s: Spark counted %d, generator %d", c.Name, got, w)
		}
		for si, s := range vote.States() {
			w := want.StateTotal(vote.Candidate(ci), vote.State(si))
			if got := byState[c.Name+"|"+s.Name]; got != w {
				t.Errorf("%s in %s: Spark counted %d, generator %d", c.Name, s.Name, got, w)
			}
		}
	}
	for k := range byState {
		name, _, _ := strings.Cut(k, "|")
		if _, ok := byCand[name]; !ok {
			t.Errorf("unknown candidate in Spark's totals: %q", k)
		}
	}
}

// TestSparkKafka publishes an election to a real Apache Kafka node and
// counts the votes topic with Spark Structured Streaming
// (deploy/spark/votes_kafka.py: the Kafka source, each value parsed with
// the seed's schema). Every record must be read and parsed, and every
// candidate x state x age group cell must be the generator's.
func TestSparkKafka(t *testing.T) {
	spark := needSpark(t)
	bin := Binaries(t)
	k := StartKafka(t, KafkaOptions{})
	env := NewEnv(t, k, 4)
	el := newElection(t, 3013)
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(0, "OUTPUT_DIR=")...)...)
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	out := filepath.Join(t.TempDir(), "totals.json")
	job := StartCmd(t, "spark votes_kafka.py", spark.Cmd("votes_kafka.py", "--brokers", k.Addr, "--topic", env.Topic,
		"--available-now", "--checkpoint", t.TempDir(), "--out", out))
	if err := job.Wait(6 * time.Minute); err != nil {
		t.Fatalf("spark job: %v\n%s", err, testbed.Tail(job.Output(), 40))
	}
	st, got, err := testbed.ReadSparkTotals(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != el.want.Total() || st.Unparsed != 0 {
		t.Errorf("Spark read %d records, %d unparsed; the producer wrote %d", st.Records, st.Unparsed, el.want.Total())
	}
	CheckTally(t, "Spark over Kafka vs generator", &got, &el.want)
}
