package kafkaio

import (
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/config"
)

// The producer's key reads back as it was written, as do the headers of
// producers before it; anything else reads as no sequence, so the counter
// does not deduplicate it.
func TestSequence(t *testing.T) {
	prod := []byte("votestream:seed=7,scale=0.005")
	for _, seq := range []int64{0, 7, 1234567, 999_999_999_999_999_999} {
		key := AppendSeqKey(nil, prod, seq)
		if p, got, ok := Sequence(key, nil); !ok || string(p) != string(prod) || got != seq {
			t.Errorf("key %q: got %q %d %v, want %s %d true", key, p, got, ok, prod, seq)
		}
		hs := []Header{{Key: HeaderProducer, Value: prod}, {Key: HeaderSeq, Value: strconv.AppendInt(nil, seq, 10)}}
		// An earlier producer's record: its key was the vote's id.
		if p, got, ok := Sequence([]byte("0b6e1c4e-8f3a-4c1e-9d7a-2f4b5c6d7e8f"), hs); !ok || string(p) != string(prod) || got != seq {
			t.Errorf("headers %d: got %q %d %v, want %s %d true", seq, p, got, ok, prod, seq)
		}
	}
	if p, got, ok := Sequence([]byte(SeqKeyPrefix+"a/b/12"), nil); !ok || string(p) != "a/b" || got != 12 {
		t.Errorf("a producer id with a slash: got %q %d %v, want a/b 12 true", p, got, ok)
	}
	// A key of the producers before SeqKeyPrefix: their id, a slash, seq.
	legacy := "votestream:seed=7,scale=0.005/42"
	if p, got, ok := Sequence([]byte(legacy), nil); !ok || string(p) != string(prod) || got != 42 {
		t.Errorf("legacy key %q: got %q %d %v, want %s 42 true", legacy, p, got, ok, prod)
	}
	for _, tc := range []struct {
		name string
		key  string
		hs   []Header
	}{
		{"none", "", nil},
		{"a vote id key", "0b6e1c4e-8f3a-4c1e-9d7a-2f4b5c6d7e8f", nil},
		{"another scheme's key", "precinct-7/12", nil},
		{"a path", "a/b/12", nil},
		{"another scheme, a votestream-like id", "votestream/12", nil},
		{"key without producer", SeqKeyPrefix + "/12", nil},
		{"key without seq", SeqKeyPrefix + "p/", nil},
		{"key seq not digits", SeqKeyPrefix + "p/1x", nil},
		{"key seq negative", SeqKeyPrefix + "p/-1", nil},
		{"key seq too long", SeqKeyPrefix + "p/1234567890123456789", nil},
		{"prefix only", SeqKeyPrefix, nil},
		{"legacy without seq", "votestream:seed=7/", nil},
		{"no producer", "", []Header{{Key: HeaderSeq, Value: []byte("1")}}},
		{"no seq", "", []Header{{Key: HeaderProducer, Value: []byte("p")}}},
		{"empty seq", "", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq}}},
		{"negative", "", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("-1")}}},
		{"not digits", "", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("1x")}}},
		{"too long", "", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("1234567890123456789")}}},
	} {
		if prod, seq, ok := Sequence([]byte(tc.key), tc.hs); ok || prod != nil || seq != 0 {
			t.Errorf("%s: got %q %d %v, want nil 0 false", tc.name, prod, seq, ok)
		}
	}
}

// Building a request reuses the batch's buffers: once grown, adding a
// record does not allocate.
func TestBatchAddDoesNotAllocate(t *testing.T) {
	var b Batch
	b.Grow(1000)
	val, prod := []byte(`{"v":1}`), []byte("p")
	now := time.Now()
	b.Add(now, val, prod, 0) // the data buffer's first growth
	b.Reset()
	seq := int64(0)
	allocs := testing.AllocsPerRun(500, func() {
		if b.Len() == 999 {
			b.Reset()
		}
		b.Add(now, val, prod, seq)
		seq++
	})
	if allocs != 0 {
		t.Errorf("Batch.Add: got %v allocs per record, want 0", allocs)
	}
	last := &b.records[b.Len()-1]
	key, err := kafka.ReadAll(last.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, ok := Sequence(key, last.Headers); !ok || got != seq-1 || last.Headers != nil {
		t.Errorf("last record's seq: got %d %v, want %d", got, ok, seq-1)
	}
}

// Every KAFKA_COMPRESSION name config accepts has its codec; only none is
// no compression.
func TestCompressionCoversConfig(t *testing.T) {
	seen := make(map[Codec]string)
	for _, name := range config.Compressions {
		c := Compression(name)
		if (c == 0) != (name == "none") {
			t.Errorf("%s: codec %v", name, c)
		}
		if other, ok := seen[c]; ok {
			t.Errorf("%s and %s: the same codec %v", name, other, c)
		}
		seen[c] = name
	}
}
