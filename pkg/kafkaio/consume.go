package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
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
//
// Fetches are read_committed: records of aborted transactions are skipped
// (the broker sends them, with the list of aborted transactions to drop),
// and so are control batches (transaction markers), which Next never
// returns but which move Last on, so a partition that ends in a marker is
// read past it.
type Fetch struct {
	batches []protocol.RecordReader
	next    int                            // the batch after cur
	cur     protocol.RecordReader          // the batch being read, nil between batches
	from    int64                          // records before it are skipped: a fetch returns whole batches
	aborted []fetchAPI.ResponseTransaction // by first offset, not yet reached
	active  []int64                        // producers whose aborted transaction is under way
	rec     FetchedRecord
	scratch []byte
	err     error
	// HighWatermark is the end of what the partition lets a read_committed
	// reader see when the fetch was answered: its last stable offset.
	HighWatermark int64
	// Last is the offset of the last record read, -1 before any: the last
	// one Next returned, or a later transaction marker or aborted record
	// it skipped.
	Last int64
}

// Next returns the next record, or nil at the end of the fetch or on error
// (see Err).
func (f *Fetch) Next() *FetchedRecord {
	for f.err == nil {
		if f.cur == nil && !f.nextBatch() {
			return nil
		}
		r, err := f.cur.ReadRecord()
		if err != nil {
			f.cur = nil
			if !errors.Is(err, io.EOF) {
				f.err = err
			}
			continue
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

// nextBatch makes the next batch with records to count current, skipping
// transaction markers and aborted transactions' batches (Last moves past
// them); it reports false at the end of the fetch.
func (f *Fetch) nextBatch() bool {
	for f.err == nil && f.next < len(f.batches) {
		b := f.batches[f.next]
		f.next++
		switch b := b.(type) {
		case *protocol.ControlBatch:
			f.skip(b, b.ProducerID)
			continue
		case *protocol.RecordBatch:
			if b.Attributes.Transactional() && f.inAborted(b.ProducerID, b.BaseOffset) {
				f.skip(b, -1)
				continue
			}
		}
		f.cur = b
		return true
	}
	return false
}

// inAborted reports whether a transactional batch of producer at base
// belongs to an aborted transaction: one that began at or before it and
// whose abort marker has not been read yet.
func (f *Fetch) inAborted(producer, base int64) bool {
	for len(f.aborted) > 0 && f.aborted[0].FirstOffset <= base {
		f.active = append(f.active, f.aborted[0].ProducerID)
		f.aborted = f.aborted[1:]
	}
	return slices.Contains(f.active, producer)
}

// skip reads a batch nobody counts, moving Last past its records; a
// control batch's abort marker (of producer) ends that producer's aborted
// transaction.
func (f *Fetch) skip(b protocol.RecordReader, producer int64) {
	for {
		r, err := b.ReadRecord()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.err = err
			}
			return
		}
		if producer >= 0 && r.Key != nil && r.Key.Len() == 4 {
			var k [4]byte
			if _, err := io.ReadFull(r.Key, k[:]); err == nil && k[2] == 0 && k[3] == 0 { // type 0: abort
				f.active = slices.DeleteFunc(f.active, func(p int64) bool { return p == producer })
			}
		}
		closeBytes(r.Key)
		closeBytes(r.Value)
		if r.Offset >= f.from {
			f.Last = r.Offset
		}
	}
}

// drain releases the records nobody read back to kafka-go's page pool.
// It moves Last by nothing: Consume goes on after what fn read.
func (f *Fetch) drain() {
	if f.cur != nil {
		closeAll(f.cur)
	}
	for _, b := range f.batches[min(f.next, len(f.batches)):] {
		closeAll(b)
	}
	f.batches, f.cur = nil, nil
}

func closeAll(b protocol.RecordReader) {
	for {
		r, err := b.ReadRecord()
		if err != nil {
			return
		}
		closeBytes(r.Key)
		closeBytes(r.Value)
	}
}

// Err is the error that ended Next early, if any.
func (f *Fetch) Err() error { return f.err }

// maxIdleFetches is how many fetches in a row may return data yet move a
// partition's reader on by nothing before Consume gives up on it: a
// reader that cannot move must say so, not spin.
const maxIdleFetches = 20

// Consume reads one partition from offset on, calling fn once per fetch
// that has records, in offset order (never one before offset), until ctx
// ends (it then returns nil) or fn or the fetch fails. fn must read the
// records it wants with Next before it returns; Consume goes on after the
// last record fn read, so fn can stop early. Fetching directly, rather
// than through kafka.Reader, lets the caller take a whole fetch at once (one
// lock, one wake-up per fetch, not per record) and reuse every buffer.
//
// An offset the partition no longer has (deleted by retention or
// kafka-delete-records, or past its end) ends Consume with an error
// wrapping ErrOffsetOutOfRange that says where the partition now starts:
// Consume never skips records.
func (c *Client) Consume(ctx context.Context, topic string, partition int, offset int64, opt ConsumeOptions,
	fn func(f *Fetch) error) error {
	opt.defaults()
	f := &Fetch{scratch: make([]byte, 0, 1024)}
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	idle := 0
	for ctx.Err() == nil {
		asked := time.Now()
		res, err := c.fetch(ctx, topic, partition, offset, opt)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if IsDenied(err) {
				return c.Denied(err, OpRead, Topic(topic))
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				return c.outOfRange(ctx, topic, partition, offset, err)
			}
			if fatal(err) {
				return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
			}
			c.log.Warn("fetch failed, retrying", "topic", topic, "partition", partition, "offset", offset, "err", err)
			_ = b.Wait(ctx) // the loop ends on an ended ctx
			continue
		}
		b.Reset()
		end := res.HighWatermark
		if res.LastStableOffset >= 0 {
			end = res.LastStableOffset
		}
		if offset >= end {
			// Nothing new within MaxWait. A broker that answers at once
			// (an open transaction holds the end back) is not asked
			// again at once.
			_ = Sleep(ctx, opt.MaxWait-time.Since(asked))
			continue
		}
		f.start(res, offset, end)
		ferr := fn(f)
		// Release what fn left unread back to kafka-go's page pool.
		f.drain()
		if ferr != nil {
			return ferr
		}
		if f.err != nil {
			return fmt.Errorf("read %s/%d at %d: %w", topic, partition, offset, f.err)
		}
		if f.Last >= offset {
			offset, idle = f.Last+1, 0
			continue
		}
		if idle++; idle >= maxIdleFetches {
			return fmt.Errorf("read %s/%d at %d: %d fetches in a row moved no further (the partition ends at %d)", topic, partition, offset, idle, end)
		}
		_ = b.Wait(ctx)
	}
	return nil
}

// start sets f to read res's records from offset on.
func (f *Fetch) start(res *fetchAPI.ResponsePartition, offset, end int64) {
	f.batches, f.next, f.cur = nil, 0, nil
	if s, ok := res.RecordSet.Records.(*protocol.RecordStream); ok {
		f.batches = s.Records
	} else if res.RecordSet.Records != nil {
		f.batches = append(f.batches, res.RecordSet.Records)
	}
	f.aborted = res.AbortedTransactions
	slices.SortFunc(f.aborted, func(a, b fetchAPI.ResponseTransaction) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	f.active = f.active[:0]
	f.from, f.err, f.HighWatermark, f.Last = offset, nil, end, -1
}

// fetch is one read_committed fetch of a partition. kafka-go's Fetch
// neither asks for read_committed answers nor passes on the aborted
// transactions, so the request goes through its transport as it is.
func (c *Client) fetch(ctx context.Context, topic string, partition int, offset int64, opt ConsumeOptions) (*fetchAPI.ResponsePartition, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout+opt.MaxWait)
	defer cancel()
	m, err := c.Transport.RoundTrip(ctx, c.Addr, &fetchAPI.Request{
		ReplicaID:      -1,
		MaxWaitTime:    int32(opt.MaxWait.Milliseconds()),
		MinBytes:       1,
		MaxBytes:       int32(opt.MaxBytes),
		IsolationLevel: readCommitted,
		SessionID:      -1,
		SessionEpoch:   -1,
		Topics: []fetchAPI.RequestTopic{{
			Topic: topic,
			Partitions: []fetchAPI.RequestPartition{{
				Partition: int32(partition), CurrentLeaderEpoch: -1, FetchOffset: offset,
				LogStartOffset: -1, PartitionMaxBytes: int32(opt.MaxBytes),
			}},
		}},
	})
	if err != nil {
		return nil, err
	}
	res := m.(*fetchAPI.Response)
	if res.ErrorCode != 0 {
		return nil, kafka.Error(res.ErrorCode)
	}
	if len(res.Topics) != 1 || len(res.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("fetch %s/%d: answer without the partition", topic, partition)
	}
	p := &res.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return nil, kafka.Error(p.ErrorCode)
	}
	return p, nil
}

// readCommitted is the fetch isolation level that reads only committed
// transactions (KIP-98).
const readCommitted = 1

// outOfRange explains an offset the partition does not have: records
// deleted before they were counted, or an offset past the end.
func (c *Client) outOfRange(ctx context.Context, topic string, partition int, offset int64, err error) error {
	first, end, oerr := c.offsets(ctx, topic, partition)
	switch {
	case oerr != nil:
		return fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	case offset < first:
		return fmt.Errorf("fetch %s/%d at %d: %w: the partition now starts at %d, so records %d to %d were deleted (retention or delete-records) before they were counted",
			topic, partition, offset, err, first, offset, first-1)
	}
	return fmt.Errorf("fetch %s/%d at %d: %w: the partition ends at %d (a checkpoint of another topic, or a topic made again?)", topic, partition, offset, err, end)
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
