package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// FetchedRecord is one record of a fetch. Its Key, Value and Headers are
// only valid during the callback that receives it: their bytes are reused
// by the next fetch.
type FetchedRecord struct {
	Offset  int64
	Time    time.Time
	Key     []byte
	Value   []byte
	Headers []kafka.Header
}

// ConsumeOptions tune a partition's fetch loop.
type ConsumeOptions struct {
	// MaxBytes bounds one fetch response; the broker returns at least one
	// whole batch even if it is larger.
	MaxBytes int
	// MaxWait is how long the broker may hold a fetch while the partition
	// has nothing new.
	MaxWait time.Duration
}

func (o *ConsumeOptions) defaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 250 * time.Millisecond
	}
}

// Fetch is one fetch response's records, read one at a time by Next. The
// record Next returns, and the bytes it points to, are valid only until the
// following call: they are reused, so reading a fetch does not allocate
// beyond what kafka-go's decoder does.
type Fetch struct {
	res     *kafka.FetchResponse
	from    int64 // records before it are skipped: a fetch returns whole batches
	rec     FetchedRecord
	scratch []byte
	err     error
	// HighWatermark is the partition's end when the fetch was answered.
	HighWatermark int64
	// Last is the offset of the last record returned, -1 before any.
	Last int64
}

// Next returns the next record, or nil at the end of the fetch or on error
// (see Err).
func (f *Fetch) Next() *FetchedRecord {
	for f.err == nil {
		r, err := f.res.Records.ReadRecord()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.err = err
			}
			return nil
		}
		if r.Offset < f.from {
			closeBytes(r.Key)
			closeBytes(r.Value)
			continue
		}
		f.scratch, f.err = appendBytes(f.scratch[:0], r.Key)
		k := len(f.scratch)
		if f.err == nil {
			f.scratch, f.err = appendBytes(f.scratch, r.Value)
		}
		if f.err != nil {
			return nil
		}
		f.rec = FetchedRecord{Offset: r.Offset, Time: r.Time, Headers: r.Headers,
			Key: f.scratch[:k:k], Value: f.scratch[k:]}
		f.Last = r.Offset
		return &f.rec
	}
	return nil
}

// drain releases the records nobody read back to kafka-go's page pool.
func (f *Fetch) drain() {
	for f.err == nil {
		r, err := f.res.Records.ReadRecord()
		if err != nil {
			return
		}
		closeBytes(r.Key)
		closeBytes(r.Value)
	}
}

// Err is the error that ended Next early, if any.
func (f *Fetch) Err() error { return f.err }

// Consume reads one partition from offset on, calling fn once per fetch
// that has records, in offset order (never one before offset), until ctx
// ends (it then returns nil) or fn or the fetch fails. fn must read the
// records it wants with Next before it returns; Consume goes on after the
// last record fn read, so fn can stop early. Fetching directly, rather
// than through kafka.Reader, lets the caller take a whole fetch at once (one
// lock, one wake-up per fetch, not per record) and reuse every buffer.
func (c *Client) Consume(ctx context.Context, topic string, partition int, offset int64, opt ConsumeOptions,
	fn func(f *Fetch) error) error {
	opt.defaults()
	f := &Fetch{scratch: make([]byte, 0, 1024)}
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		res, err := c.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: partition, Offset: offset,
			MinBytes: 1, MaxBytes: int64(opt.MaxBytes), MaxWait: opt.MaxWait,
		})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if IsDenied(err) {
				return c.Denied(err, OpRead, Topic(topic))
			}
			if fatal(err) || errors.Is(err, kafka.OffsetOutOfRange) {
				return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
			}
			c.log.Warn("fetch failed, retrying", "topic", topic, "partition", partition, "offset", offset, "err", err)
			_ = b.Wait(ctx) // the loop ends on an ended ctx
			continue
		}
		b.Reset()
		if offset >= res.HighWatermark {
			continue // nothing new within MaxWait
		}
		f.res, f.from, f.err, f.HighWatermark, f.Last = res, offset, nil, res.HighWatermark, -1
		ferr := fn(f)
		// Release what fn left unread back to kafka-go's page pool.
		f.drain()
		if ferr != nil {
			return ferr
		}
		if f.err != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, offset, f.err)
		}
		f.res = nil
		if f.Last >= offset {
			offset = f.Last + 1
		}
	}
	return nil
}

// appendBytes reads b to the end of dst and releases b's pages back to
// kafka-go's pool.
func appendBytes(dst []byte, b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return dst, nil
	}
	defer b.Close()
	n := b.Len()
	dst = growTo(dst, len(dst)+n)
	_, err := io.ReadFull(b, dst[len(dst)-n:])
	return dst, err
}

func growTo(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(2*cap(b), n, 1024))
	copy(nb, b)
	return nb
}

func closeBytes(b kafka.Bytes) {
	if b != nil {
		b.Close()
	}
}
