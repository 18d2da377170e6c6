package checkpoint_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/vote"
)

// sampleState returns a checkpoint with every field set.
func sampleState(t testing.TB, seed uint64) *checkpoint.State {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	s := &checkpoint.State{
		Partition: int32(r.IntN(12)),
		Offset:    r.Int64N(1 << 40),
		Written:   1730837730123,
		Latest:    1730851200000000 + r.Int64N(1<<35),
		Owner:     "counter-7f9c-" + string(rune('a'+r.IntN(26))),
		Topic:     "votes-" + string(rune('a'+r.IntN(26))),
		TopicID:   [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, byte(r.IntN(256))},
		Producers: []checkpoint.ProducerSeq{
			{ID: "producer-a", Seq: r.Int64N(1 << 30)},
			{ID: "producer-b", Seq: 0},
			{ID: "", Seq: -1},
			{ID: "ünïcode", Seq: math.MaxInt64},
		},
	}
	for c := range s.Tally {
		for st := range s.Tally[c] {
			for a := range s.Tally[c][st] {
				s.Tally[c][st][a] = r.Int64N(1 << uint(r.IntN(40)+1))
			}
		}
	}
	for i := range s.Rejected {
		s.Rejected[i] = int64(i * 1000)
	}
	return s
}

func marshal(t testing.TB, s *checkpoint.State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	extreme := &checkpoint.State{Partition: math.MaxInt32, Offset: math.MaxInt64, Written: math.MinInt64}
	extreme.Tally[5][50][3] = math.MaxInt64
	extreme.Rejected[vote.ReasonDuplicate] = math.MaxInt64
	negPartition := &checkpoint.State{Partition: -1, Owner: strings.Repeat("x", 1000)}
	tests := []struct {
		name string
		s    *checkpoint.State
	}{
		{"zero", &checkpoint.State{}},
		{"full", sampleState(t, 1)},
		{"another", sampleState(t, 2)},
		{"extremes", extreme},
		{"negative partition, long owner", negPartition},
		{"many producers", func() *checkpoint.State {
			s := &checkpoint.State{Offset: 5}
			for i := range 300 {
				s.Producers = append(s.Producers, checkpoint.ProducerSeq{ID: strings.Repeat("p", i), Seq: int64(i)})
			}
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := marshal(t, tt.s)
			var got checkpoint.State
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !reflect.DeepEqual(&got, tt.s) {
				t.Errorf("round trip:\n got  %+v\n want %+v", got.Producers, tt.s.Producers)
				if d := got.Tally.Diff(&tt.s.Tally, 3); len(d) > 0 {
					t.Errorf("tally differs: %v", d)
				}
				t.Errorf("got partition %d offset %d written %d owner %q rejected %v; want %d %d %d %q %v",
					got.Partition, got.Offset, got.Written, got.Owner, got.Rejected,
					tt.s.Partition, tt.s.Offset, tt.s.Written, tt.s.Owner, tt.s.Rejected)
			}
			// AppendBinary appends, and encodes the same bytes.
			prefixed, err := tt.s.AppendBinary([]byte("prefix"))
			if err != nil || !bytes.Equal(prefixed, append([]byte("prefix"), b...)) {
				t.Errorf("AppendBinary(prefix) = %q, %v; want prefix then MarshalBinary's bytes", prefixed, err)
			}
		})
	}
}

func TestUnmarshalOverwrites(t *testing.T) {
	s := sampleState(t, 3)
	b := marshal(t, &checkpoint.State{Offset: 1})
	if err := s.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, &checkpoint.State{Offset: 1}) {
		t.Errorf("UnmarshalBinary into a used State kept old fields: %+v", s.Producers)
	}
}

// TestUnmarshalVersion1 reads a checkpoint written before Latest: the same
// bytes without it, under version 1.
func TestUnmarshalVersion1(t *testing.T) {
	want := sampleState(t, 5)
	want.Latest, want.Topic, want.TopicID = 0, "", [16]byte{}
	b := marshal(t, want)
	b = b[:len(b)-1-1-16] // Latest 0, an empty Topic, a zero TopicID
	b[4] = 1
	var got checkpoint.State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("version 1 decoded as %+v", got.Producers)
	}
}

// TestUnmarshalVersion2 reads a checkpoint written before Topic and
// TopicID: it names no topic.
func TestUnmarshalVersion2(t *testing.T) {
	want := sampleState(t, 6)
	want.Topic, want.TopicID = "", [16]byte{}
	b := marshal(t, want)
	b = b[:len(b)-1-16] // an empty Topic, a zero TopicID
	b[4] = 2
	var got checkpoint.State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("version 2 decoded as %+v, want %+v", got.Producers, want.Producers)
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	good := marshal(t, sampleState(t, 4))
	withVersion := func(v byte) []byte {
		b := bytes.Clone(good)
		b[4] = v
		return b
	}
	negOffset := marshal(t, &checkpoint.State{Offset: -1})
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, "bad magic"},
		{"magic only", []byte("VSCP"), "bad magic"},
		{"bad magic", append([]byte("VSCX"), good[4:]...), "bad magic"},
		{"lower-case magic", append([]byte("vscp"), good[4:]...), "bad magic"},
		{"version 0", withVersion(0), "version 0, want 1 to 3"},
		{"version 4", withVersion(4), "version 4, want 1 to 3"},
		{"version 2 with topic", withVersion(2), "trailing bytes"},
		{"truncated topic id", good[:len(good)-1], "truncated"},
		{"version 1 with Latest", withVersion(1), "trailing bytes"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing bytes"},
		{"trailing record", append(bytes.Clone(good), good...), "trailing bytes"},
		{"negative offset", negOffset, "negative offset"},
		{"tally shape", func() []byte {
			// Header of an empty checkpoint, then 7 candidates.
			b := []byte("VSCP\x01\x00\x00\x00\x00")
			return append(b, 7, vote.NumStates, vote.NumAgeGroups)
		}(), "tally shape"},
		{"varint overflow", append([]byte("VSCP\x01"), bytes.Repeat([]byte{0xff}, 11)...), "truncated"},
		{"huge producer count", func() []byte {
			b := marshal(t, &checkpoint.State{})
			b = b[:len(b)-2-1-16] // the producer count, Latest, Topic, TopicID
			return append(b, 0xff, 0xff, 0xff, 0xff, 0x0f)
		}(), "truncated"},
		{"huge owner length", append([]byte("VSCP\x01\x00\x00\x00"), 0xff, 0xff, 0xff, 0xff, 0x0f), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s checkpoint.State
			err := s.UnmarshalBinary(tt.in)
			if !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Fatalf("UnmarshalBinary(%q) = %v, want an error wrapping ErrCorrupt", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestUnmarshalTruncated(t *testing.T) {
	for _, s := range []*checkpoint.State{sampleState(t, 5), {}} {
		good := marshal(t, s)
		for n := range len(good) {
			var got checkpoint.State
			err := got.UnmarshalBinary(good[:n])
			if !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(good), err)
			}
		}
	}
}

func TestCountDedupe(t *testing.T) {
	v := vote.Vote{State: 3, Candidate: 2, AgeGroup: 1}
	type rec struct {
		producer string
		seq      int64
		want     vote.Reason
	}
	tests := []struct {
		name          string
		recs          []rec
		wantVotes     int64
		wantDuplicate int64
		wantProducers []checkpoint.ProducerSeq
	}{
		{"in order", []rec{{"a", 0, 0}, {"a", 1, 0}, {"a", 2, 0}}, 3, 0,
			[]checkpoint.ProducerSeq{{"a", 2}}},
		{"retry of the last", []rec{{"a", 0, 0}, {"a", 1, 0}, {"a", 1, vote.ReasonDuplicate}}, 2, 1,
			[]checkpoint.ProducerSeq{{"a", 1}}},
		{"retry of an older one", []rec{{"a", 5, 0}, {"a", 6, 0}, {"a", 3, vote.ReasonDuplicate}, {"a", 7, 0}}, 3, 1,
			[]checkpoint.ProducerSeq{{"a", 7}}},
		{"gaps are fine", []rec{{"a", 10, 0}, {"a", 100, 0}, {"a", 99, vote.ReasonDuplicate}}, 2, 1,
			[]checkpoint.ProducerSeq{{"a", 100}}},
		{"no producer: no dedupe", []rec{{"", 1, 0}, {"", 1, 0}, {"", 0, 0}, {"", -7, 0}}, 4, 0, nil},
		{"producers independent", []rec{{"a", 0, 0}, {"b", 0, 0}, {"a", 1, 0}, {"b", 0, vote.ReasonDuplicate}, {"c", 5, 0}, {"b", 1, 0}, {"a", 1, vote.ReasonDuplicate}},
			5, 2, []checkpoint.ProducerSeq{{"a", 1}, {"b", 1}, {"c", 5}}},
		{"no producer beside producers", []rec{{"a", 3, 0}, {"", 3, 0}, {"a", 3, vote.ReasonDuplicate}, {"", 3, 0}}, 3, 1,
			[]checkpoint.ProducerSeq{{"a", 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s checkpoint.State
			for i, r := range tt.recs {
				var producer []byte
				if r.producer != "" {
					producer = []byte(r.producer)
				}
				if got := s.Count(&v, producer, r.seq); got != r.want {
					t.Errorf("record %d (%q, %d): Count = %v, want %v", i, r.producer, r.seq, got, r.want)
				}
			}
			if got := s.Votes(); got != tt.wantVotes {
				t.Errorf("Votes() = %d, want %d", got, tt.wantVotes)
			}
			if got := s.Tally[v.Candidate][v.State][v.AgeGroup]; got != tt.wantVotes {
				t.Errorf("the vote's cell = %d, want %d", got, tt.wantVotes)
			}
			if got := s.Rejected[vote.ReasonDuplicate]; got != tt.wantDuplicate {
				t.Errorf("Rejected[duplicate] = %d, want %d", got, tt.wantDuplicate)
			}
			if !reflect.DeepEqual(s.Producers, tt.wantProducers) {
				t.Errorf("Producers = %v, want %v", s.Producers, tt.wantProducers)
			}
		})
	}
}

// TestCountProducerBytes checks Count keeps no reference to the producer
// bytes, which belong to a Kafka record header that is reused.
func TestCountProducerBytes(t *testing.T) {
	var s checkpoint.State
	var v vote.Vote
	buf := []byte("producer-a")
	s.Count(&v, buf, 1)
	copy(buf, "producer-b")
	if got := s.Producers[0].ID; got != "producer-a" {
		t.Errorf("producer ID changed with the caller's buffer: %q", got)
	}
	if r := s.Count(&v, []byte("producer-a"), 1); r != vote.ReasonDuplicate {
		t.Errorf("retry after the buffer changed: %v, want duplicate", r)
	}
}

func TestReject(t *testing.T) {
	var s checkpoint.State
	s.Reject(vote.ReasonJSON)
	s.Reject(vote.ReasonJSON)
	s.Reject(vote.ReasonState)
	want := [vote.NumReasons]int64{vote.ReasonJSON: 2, vote.ReasonState: 1}
	if s.Rejected != want {
		t.Errorf("Rejected = %v, want %v", s.Rejected, want)
	}
	if s.Votes() != 0 {
		t.Errorf("Votes() = %d after rejects, want 0", s.Votes())
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := sampleState(t, 6)
	want := marshal(t, orig)
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("Clone differs from the original")
	}
	c.Producers[0].Seq = -100
	c.Producers[1].ID = "changed"
	c.Producers = append(c.Producers, checkpoint.ProducerSeq{ID: "new", Seq: 1})
	c.Tally[0][0][0]++
	c.Rejected[0]++
	c.Offset++
	var v vote.Vote
	c.Count(&v, []byte("producer-a"), math.MaxInt64)
	if got := marshal(t, orig); !bytes.Equal(got, want) {
		t.Errorf("changing the clone changed the original")
	}
	// Appending to the original must not write into the clone's array either.
	c2 := orig.Clone()
	orig.Producers = append(orig.Producers[:1], checkpoint.ProducerSeq{ID: "over", Seq: 9})
	if c2.Producers[1].ID != "producer-b" {
		t.Errorf("appending to the original changed the clone: %v", c2.Producers)
	}
}

// FuzzUnmarshal checks UnmarshalBinary never panics, fails only with
// ErrCorrupt, and that what it accepts survives an encode and decode.
// Checkpoints are kilobytes, so minimizing one takes long: run it with
// -fuzzminimizetime 3s or it seems to stall.
func FuzzUnmarshal(f *testing.F) {
	f.Add(marshal(f, &checkpoint.State{}))
	f.Add(marshal(f, sampleState(f, 7)))
	f.Add([]byte("VSCP\x01"))
	f.Add([]byte("VSCP\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s checkpoint.State
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, checkpoint.ErrCorrupt) {
				t.Fatalf("UnmarshalBinary(%q) = %v, want ErrCorrupt", data, err)
			}
			return
		}
		out := marshal(t, &s)
		var back checkpoint.State
		if err := back.UnmarshalBinary(out); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(&back, &s) {
			t.Fatalf("decode, encode, decode differs for %q", data)
		}
	})
}

// TestCountLatest: Latest is the newest time of a vote counted, whatever
// the order they come in; a duplicate does not move it.
func TestCountLatest(t *testing.T) {
	var s checkpoint.State
	for i, tm := range []int64{30, 10, 50, 20} {
		v := vote.Vote{Time: tm}
		s.Count(&v, []byte("p"), int64(i))
	}
	dup := vote.Vote{Time: 99}
	if r := s.Count(&dup, []byte("p"), 0); r != vote.ReasonDuplicate || s.Latest != 50 {
		t.Errorf("Latest = %d (duplicate: %v), want 50", s.Latest, r)
	}
}

// TestCountProducerBounds checks the state keeps at most MaxProducers ids
// of at most MaxProducerID bytes: a vote of a producer past either bound is
// rejected as ReasonProducer, and the checkpoint stays small however many
// ids the topic's writers invent.
func TestCountProducerBounds(t *testing.T) {
	var s checkpoint.State
	var v vote.Vote
	long := bytes.Repeat([]byte("x"), checkpoint.MaxProducerID+1)
	if r := s.Count(&v, long, 1); r != vote.ReasonProducer {
		t.Errorf("id of %d bytes: %v, want producer", len(long), r)
	}
	if r := s.Count(&v, long[:checkpoint.MaxProducerID], 1); r != vote.ReasonNone {
		t.Errorf("id of %d bytes: %v, want counted", checkpoint.MaxProducerID, r)
	}
	for i := 1; i < checkpoint.MaxProducers; i++ {
		if r := s.Count(&v, fmt.Appendf(nil, "p%d", i), 1); r != vote.ReasonNone {
			t.Fatalf("producer %d: %v, want counted", i, r)
		}
	}
	if r := s.Count(&v, []byte("one too many"), 1); r != vote.ReasonProducer {
		t.Errorf("producer %d: %v, want producer", checkpoint.MaxProducers+1, r)
	}
	if r := s.Count(&v, []byte("p1"), 2); r != vote.ReasonNone {
		t.Errorf("a known producer past the bound: %v, want counted", r)
	}
	if r := s.Count(&v, nil, 0); r != vote.ReasonNone {
		t.Errorf("a vote without producer past the bound: %v, want counted", r)
	}
	if got, want := s.Rejected[vote.ReasonProducer], int64(2); got != want {
		t.Errorf("rejected as producer: %d, want %d", got, want)
	}
	if got, want := s.Votes(), int64(checkpoint.MaxProducers+2); got != want {
		t.Errorf("votes: %d, want %d", got, want)
	}
	b := marshal(t, &s)
	if len(b) > 32<<10 {
		t.Errorf("checkpoint with every producer bound reached is %d bytes, want under 32 KiB", len(b))
	}
}

// TestCovers checks which checkpoints count a votes topic: those naming
// it (with its id, or without one), and those naming none only where
// untagged checkpoints are trusted.
func TestCovers(t *testing.T) {
	id, other := [16]byte{1}, [16]byte{2}
	tests := []struct {
		name     string
		s        checkpoint.State
		untagged bool
		want     bool
	}{
		{"same topic and id", checkpoint.State{Topic: "votes", TopicID: id}, false, true},
		{"same topic, written without id", checkpoint.State{Topic: "votes"}, false, true},
		{"another topic", checkpoint.State{Topic: "votes1", TopicID: id}, true, false},
		{"same name, topic made again", checkpoint.State{Topic: "votes", TopicID: other}, true, false},
		{"untagged, trusted", checkpoint.State{}, true, true},
		{"untagged, not trusted", checkpoint.State{}, false, false},
	}
	for _, tt := range tests {
		err := tt.s.Covers("votes", id, tt.untagged)
		if (err == nil) != tt.want || (err != nil && !errors.Is(err, checkpoint.ErrForeign)) {
			t.Errorf("%s: Covers = %v, want covered %v", tt.name, err, tt.want)
		}
	}
	if err := (&checkpoint.State{Topic: "votes", TopicID: id}).Covers("votes", [16]byte{}, false); err != nil {
		t.Errorf("id unknown now: %v, want covered", err)
	}
}
