package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
)

// FetchFrom reads the records of a partition from offset on, waiting up to
// maxWait for some to arrive, and returns them with the offset to ask for
// next and the partition's high watermark. Nothing new by maxWait is not an
// error: it returns no records and next equal to offset. Repeated calls
// follow a partition as a Reader would, without a connection of its own,
// so one client can follow many small partitions.
func (c *Client) FetchFrom(ctx context.Context, topic string, partition int, offset int64, maxWait time.Duration) (recs []Record, next, hwm int64, err error) {
	res, err := c.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: maxWait,
	})
	if err != nil {
		return nil, offset, 0, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	if res.Error != nil {
		return nil, offset, 0, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, res.Error)
	}
	next = offset
	for {
		r, err := res.Records.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, offset, 0, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if r.Offset < offset {
			continue // a fetch returns whole batches
		}
		val, err := kafka.ReadAll(r.Value)
		if err != nil {
			return nil, offset, 0, fmt.Errorf("read %s/%d at %d: %w", topic, partition, r.Offset, err)
		}
		recs = append(recs, Record{Offset: r.Offset, Value: val})
		next = r.Offset + 1
	}
	return recs, next, res.HighWatermark, nil
}
