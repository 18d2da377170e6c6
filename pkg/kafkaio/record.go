package kafkaio

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Header is a record header. It is kafka-go's, under kafkaio's name, so a
// fetch's headers reach the counter without being copied.
type Header = kafka.Header

// Message is a record to produce as it is: its key, value and headers go
// out unchanged (dead letters, checkpoints). It is kafka-go's, under
// kafkaio's name, because the counter's group loop still names kafka-go's.
type Message = kafka.Message

// Codec is a record batch compression, from Compression.
type Codec = kafka.Compression

// Snappy is the checkpoints' codec: kafka-go's lz4 keeps 4 MiB blocks per
// writer and reader, a large part of a small process.
const Snappy Codec = kafka.Snappy

// ErrOffsetOutOfRange is a fetch below a partition's first offset (its
// head deleted) or past its end.
var ErrOffsetOutOfRange error = kafka.OffsetOutOfRange

// SeqKeyPrefix starts every key votestream's producer writes: a key
// format version and a unit separator (0x1f), which no text key carries.
// Only a key with it, or with legacyKeyPrefix, is read as a producer's id
// and sequence, so a third party's keys ("precinct-7/12") are never taken
// for a votestream producer's and dropped as repeats.
const SeqKeyPrefix = "vs1\x1f"

// legacyKeyPrefix starts the keys producers wrote before SeqKeyPrefix,
// which were their id (always "votestream:seed=...") and sequence: topics
// they wrote still count exactly.
const legacyKeyPrefix = "votestream:seed="

// AppendSeqKey appends to buf the key votestream's producer gives vote seq
// of producer: SeqKeyPrefix, the producer's id, a slash and seq in
// decimal. Counters read it back with Sequence. The sequence is in the key,
// not in headers, because kafka-go's fetch decoder allocates five times for
// every record with two headers: it had been half the cost of reading a
// vote.
func AppendSeqKey(buf, producer []byte, seq int64) []byte {
	buf = append(buf, SeqKeyPrefix...)
	buf = append(buf, producer...)
	buf = append(buf, '/')
	return strconv.AppendInt(buf, seq, 10)
}

// Sequence returns the producer and sequence of a record without
// allocating: from its key when AppendSeqKey (or a producer before it)
// wrote it, else from the headers votestream's producers wrote before the
// key carried them (HeaderProducer, HeaderSeq), so topics written by an
// earlier version still count exactly. Any other record, or one with a
// sequence that is not 1 to 18 decimal digits, has none: nil, 0 and false.
func Sequence(key []byte, hs []Header) (producer []byte, seq int64, ok bool) {
	switch {
	case bytes.HasPrefix(key, []byte(SeqKeyPrefix)):
		if p, seq, ok := splitSeq(key[len(SeqKeyPrefix):]); ok {
			return p, seq, true
		}
	case bytes.HasPrefix(key, []byte(legacyKeyPrefix)):
		if p, seq, ok := splitSeq(key); ok {
			return p, seq, true
		}
	}
	var seqRaw []byte
	for i := range hs {
		switch hs[i].Key {
		case HeaderProducer:
			producer = hs[i].Value
		case HeaderSeq:
			seqRaw = hs[i].Value
		}
	}
	if seq, ok := digits(seqRaw); ok && len(producer) > 0 {
		return producer, seq, true
	}
	return nil, 0, false
}

// splitSeq reads "producer/seq", the producer not empty.
func splitSeq(b []byte) ([]byte, int64, bool) {
	if i := bytes.LastIndexByte(b, '/'); i > 0 {
		if seq, ok := digits(b[i+1:]); ok {
			return b[:i], seq, true
		}
	}
	return nil, 0, false
}

// digits parses 1 to 18 decimal digits, which fit an int64.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Batch is one partition's vote records for ProduceBatch, built in place:
// its records, key and value readers, and the bytes behind them
// (copied in) are reused from request to request, so adding a record does
// not allocate once the batch has grown to its largest size. Once
// ProduceBatch returns, the broker has acknowledged the records and the
// batch can be Reset. After a request that had to be retried the batch
// starts afresh instead: the attempt given up on may still be being read
// by kafka-go (see Client.produce), so its memory is left to it.
type Batch struct {
	records []kafka.Record
	bytes   []Bytes // a key and a value per record
	data    []byte  // every record's key and value
}

// Grow makes room for n records in all, sized once for the largest batch
// so no record's readers move while the request is built. It drops the
// records added.
func (b *Batch) Grow(n int) {
	if cap(b.records) >= n {
		return
	}
	b.records = make([]kafka.Record, 0, n)
	b.bytes = make([]Bytes, 2*n)
	b.data = b.data[:0]
}

// Add appends vote seq of producer, keyed by AppendSeqKey, with a copy of
// its value. Grow must have made room for it.
func (b *Batch) Add(t time.Time, value, producer []byte, seq int64) {
	r := len(b.records)
	// Slices of data stay valid if append moves it: the old array keeps
	// what they show.
	off := len(b.data)
	b.data = AppendSeqKey(b.data, producer, seq)
	b.bytes[2*r].Reset(b.data[off:len(b.data):len(b.data)])
	off = len(b.data)
	b.data = append(b.data, value...)
	b.bytes[2*r+1].Reset(b.data[off:len(b.data):len(b.data)])
	b.records = append(b.records, kafka.Record{Time: t, Key: &b.bytes[2*r], Value: &b.bytes[2*r+1]})
}

// Len is the number of records added since the last Reset.
func (b *Batch) Len() int { return len(b.records) }

// Size is the bytes of the keys and values added since the last Reset:
// the request's size before compression, near enough.
func (b *Batch) Size() int { return len(b.data) }

// Reset empties the batch, keeping its buffers.
func (b *Batch) Reset() { b.records, b.data = b.records[:0], b.data[:0] }

// ProduceBatch writes b's records to one partition, as Produce does.
func (c *Client) ProduceBatch(ctx context.Context, topic string, partition int, codec Codec, b *Batch) error {
	retried, err := c.produce(ctx, topic, partition, codec, b.records)
	if retried || err != nil {
		b.abandon()
	}
	return err
}

// abandon leaves the batch's memory to an attempt that may still read it
// and gives the batch new memory of the same size, its records (their
// count) as they were until Reset.
func (b *Batch) abandon() {
	b.records = append(make([]kafka.Record, 0, cap(b.records)), b.records...)
	b.bytes = make([]Bytes, len(b.bytes))
	b.data = make([]byte, 0, cap(b.data))
}

// ProduceMessages writes msgs to one partition, as Produce does, with
// their keys, values, headers and times as they are.
func (c *Client) ProduceMessages(ctx context.Context, topic string, partition int, codec Codec, msgs []Message) error {
	recs := make([]kafka.Record, len(msgs))
	bs := make([]Bytes, 2*len(msgs))
	for i, m := range msgs {
		recs[i] = kafka.Record{Time: m.Time, Headers: m.Headers}
		if m.Key != nil {
			bs[2*i].Reset(m.Key)
			recs[i].Key = &bs[2*i]
		}
		if m.Value != nil {
			bs[2*i+1].Reset(m.Value)
			recs[i].Value = &bs[2*i+1]
		}
	}
	return c.Produce(ctx, topic, partition, codec, recs)
}
