package kafkaio

import (
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/config"
)

// The producer's headers read back as they were written; anything else
// reads as no headers, so the counter does not deduplicate it.
func TestProducerSeq(t *testing.T) {
	hs := make([]Header, 2)
	for _, seq := range []int64{0, 7, 1234567, 999_999_999_999_999_999} {
		SetSeqHeaders(hs, nil, []byte("p1"), seq)
		prod, got, ok := ProducerSeq(hs)
		if !ok || string(prod) != "p1" || got != seq {
			t.Errorf("seq %d: got %q %d %v, want p1 %d true", seq, prod, got, ok, seq)
		}
	}
	for _, tc := range []struct {
		name string
		hs   []Header
	}{
		{"none", nil},
		{"no producer", []Header{{Key: HeaderSeq, Value: []byte("1")}}},
		{"no seq", []Header{{Key: HeaderProducer, Value: []byte("p")}}},
		{"empty seq", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq}}},
		{"negative", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("-1")}}},
		{"not digits", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("1x")}}},
		{"too long", []Header{{Key: HeaderProducer, Value: []byte("p")}, {Key: HeaderSeq, Value: []byte("1234567890123456789")}}},
	} {
		if prod, seq, ok := ProducerSeq(tc.hs); ok || prod != nil || seq != 0 {
			t.Errorf("%s: got %q %d %v, want nil 0 false", tc.name, prod, seq, ok)
		}
	}
}

// Building a request reuses the batch's buffers: once grown, adding a
// record does not allocate.
func TestBatchAddDoesNotAllocate(t *testing.T) {
	var b Batch
	b.Grow(1000)
	key, val, prod := []byte("k"), []byte(`{"v":1}`), []byte("p")
	now := time.Now()
	b.Add(now, key, val, prod, 0) // the digits buffer's first growth
	b.Reset()
	seq := int64(0)
	allocs := testing.AllocsPerRun(500, func() {
		if b.Len() == 999 {
			b.Reset()
		}
		b.Add(now, key, val, prod, seq)
		seq++
	})
	if allocs != 0 {
		t.Errorf("Batch.Add: got %v allocs per record, want 0", allocs)
	}
	if _, got, ok := ProducerSeq(b.records[b.Len()-1].Headers); !ok || got != seq-1 {
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
