package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// TestChaosBadInput injects, with kcat (an outside client), records of every
// kind a counter must refuse, into partitions the producer is writing at the
// same time. Each must be counted by reason in votestream_rejected_records,
// copied once with its reason to the dead-letter topic (a duplicate as the
// run of one it is), and never stall its partition: the votes after it are
// counted and the totals are exact. A valid vote without votestream's
// headers is counted.
func TestChaosBadInput(t *testing.T) {
	RequireTool(t, "kcat")
	testBadInput(t, StartBroker(t))
}

// TestKafkaBadInput is TestChaosBadInput on one Apache Kafka node.
func TestKafkaBadInput(t *testing.T) {
	RequireTool(t, "kcat")
	testBadInput(t, StartKafka(t, KafkaOptions{}))
}

func testBadInput(t *testing.T, cluster Bootstrapper) {
	bin := Binaries(t)
	env := NewEnv(t, cluster, 4)
	el := newElection(t, 3006)
	f := newFleet(t, env)
	f.start("a")
	f.start("b")
	prod := Start(t, "producer", bin.Producer, env.Vars(el.producerVars(pick(12*time.Second, 60*time.Second), "OUTPUT_DIR=")...)...)
	waitPublished(t, prod, el.want.Total()/4, 2*time.Minute)

	const good = `{"vote_id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","timestamp":"2024-11-05T09:46:40.000000Z","state":"Ohio","candidate":"Jill Stein","age_group":"26-40","vote_count":1}`
	swap := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	// Real records of the election, sent again: one with its own key (the
	// producer's id and its sequence), one with the headers producers wrote
	// before the key carried the sequence.
	published := func(p int) (key, value string) {
		out := Kcat(t, nil, "-C", "-b", env.Brokers, "-t", env.Topic, "-p", strconv.Itoa(p), "-o", "5", "-c", "1", "-e", "-q", "-f", "%k\n%s\n")
		key, value, _ = strings.Cut(strings.TrimSuffix(out, "\n"), "\n")
		if _, _, ok := kafkaio.Sequence([]byte(key), nil); !ok {
			t.Fatalf("record %d/5 has no sequence in its key: %q", p, out)
		}
		return key, value
	}
	dupKey, dupValue := published(2)
	oldKey, oldValue := published(3)
	oldProducer, oldSeq, _ := kafkaio.Sequence([]byte(oldKey), nil)

	cases := []struct {
		name, value string
		reason      vote.Reason // ReasonNone: a valid vote, counted
		null        bool        // a NULL value rather than an empty one
		key         string      // bad-N when empty
		headers     []string
	}{
		{name: "invalid JSON", value: `this is not json`, reason: vote.ReasonJSON},
		{name: "truncated", value: good[:70], reason: vote.ReasonJSON},
		{name: "empty value", value: "", reason: vote.ReasonEmpty},
		{name: "null value", null: true, reason: vote.ReasonEmpty},
		{name: "not an object", value: `[1,2,3]`, reason: vote.ReasonType},
		{name: "vote_count a string", value: swap(`"vote_count":1`, `"vote_count":"1"`), reason: vote.ReasonType},
		{name: "state a number", value: swap(`"state":"Ohio"`, `"state":39`), reason: vote.ReasonType},
		{name: "unknown candidate", value: swap("Jill Stein", "Ross Perot"), reason: vote.ReasonCandidate},
		{name: "unknown state", value: swap("Ohio", "Puerto Rico"), reason: vote.ReasonState},
		{name: "unknown age group", value: swap("26-40", "12-17"), reason: vote.ReasonAgeGroup},
		{name: "vote_count 2", value: swap(`"vote_count":1`, `"vote_count":2`), reason: vote.ReasonVoteCount},
		{name: "vote_count 0", value: swap(`"vote_count":1`, `"vote_count":0`), reason: vote.ReasonVoteCount},
		{name: "missing field", value: swap(`"age_group":"26-40",`, ``), reason: vote.ReasonField},
		{name: "unknown field", value: swap(`"vote_count":1`, `"vote_count":1,"weight":3`), reason: vote.ReasonField},
		{name: "bad vote_id", value: swap("6f1c2a3b-", "6f1c2a3b_"), reason: vote.ReasonVoteID},
		{name: "bad timestamp", value: swap("2024-11-05T", "2024-13-05T"), reason: vote.ReasonTimestamp},
		{name: "oversized", value: swap(`"vote_count":1`, `"vote_count":1,"pad":"`+strings.Repeat("x", 5000)+`"`), reason: vote.ReasonOversized},
		{name: "duplicate of a published vote", value: dupValue, reason: vote.ReasonDuplicate, key: dupKey},
		{name: "duplicate in an earlier producer's headers", value: oldValue, reason: vote.ReasonDuplicate,
			headers: []string{kafkaio.HeaderProducer + "=" + string(oldProducer), kafkaio.HeaderSeq + "=" + strconv.FormatInt(oldSeq, 10)}},
		{name: "valid, no sequence", value: good, reason: vote.ReasonNone},
	}
	want := el.want
	rejected := map[string]int64{}
	type sent struct {
		partition int
		reason    vote.Reason
		value     string
	}
	var dead []sent
	for i, c := range cases {
		p := i % env.Partitions
		switch {
		case c.key != "":
			p = 2
		case c.headers != nil:
			p = 3
		}
		args := []string{"-P", "-b", env.Brokers, "-t", env.Topic, "-p", strconv.Itoa(p), "-K", "\t"}
		if c.null {
			args = append(args, "-Z")
		}
		for _, h := range c.headers {
			args = append(args, "-H", h)
		}
		// key<TAB>value with no newline: one record, even an empty one.
		key := c.key
		if key == "" {
			key = fmt.Sprintf("bad-%d", i)
		}
		Kcat(t, strings.NewReader(key+"\t"+c.value), args...)
		if c.reason == vote.ReasonNone {
			c, _ := vote.ParseCandidate([]byte("Jill Stein"))
			s, _ := vote.ParseState([]byte("Ohio"))
			a, _ := vote.ParseAgeGroup([]byte("26-40"))
			want[c][s][a]++
			continue
		}
		rejected[c.reason.String()]++
		v := c.value
		if c.reason == vote.ReasonDuplicate {
			v = "run of 1" // a run of duplicates is one letter: its summary
		}
		dead = append(dead, sent{p, c.reason, v})
	}
	waitProducer(t, prod)
	finish(t, f, env, &want, chaosRow{Fault: "bad records injected with kcat", Broker: brokerName(cluster), Injected: len(cases),
		RecoveryMeaning: "-", recoveryNotMeasure: true,
		ExtraNotes: fmt.Sprintf("%d rejected by reason and dead-lettered once each, 1 valid unsequenced vote counted", len(dead))}, rejected)

	// The dead-letter topic holds each rejected record once, with its reason
	// and where it came from; a duplicate as the one-record run it is.
	out := Kcat(t, nil, "-C", "-b", env.Brokers, "-t", env.DLQTopic, "-e", "-q", "-f", "%h\t%s\n")
	got := map[string]int{}
	hdr := regexp.MustCompile(`votestream-reason=([a-z_]+).*votestream-source-topic=([^,]+),votestream-source-partition=(\d+),votestream-source-offset=(\d+)`)
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		h, v, _ := strings.Cut(line, "\t")
		m := hdr.FindStringSubmatch(h)
		if m == nil {
			t.Errorf("dead letter without votestream's headers: %q", line)
			continue
		}
		if m[2] != env.Topic {
			t.Errorf("dead letter from topic %q, want %q", m[2], env.Topic)
		}
		if m[1] == vote.ReasonDuplicate.String() {
			var run struct{ Records int64 }
			if err := json.Unmarshal([]byte(v), &run); err != nil {
				t.Errorf("dead letter of a run of duplicates: %v: %q", err, v)
			}
			v = fmt.Sprintf("run of %d", run.Records)
		}
		got[m[1]+"|"+m[3]+"|"+v]++
	}
	for _, d := range dead {
		v := d.value
		if len(v) > vote.MaxRecordSize {
			v = v[:vote.MaxRecordSize]
		}
		key := fmt.Sprintf("%s|%d|%s", d.reason, d.partition, v)
		if got[key] != 1 {
			t.Errorf("dead letter %s from partition %d (%.40q): found %d times, want once", d.reason, d.partition, v, got[key])
		}
		delete(got, key)
	}
	for k, n := range got {
		t.Errorf("unexpected dead letter (%d times): %.80s", n, k)
	}
	f.stopAll()
}
