package kafkaio

import (
	"context"
	"math"
	"time"
)

// FetchFrom reads the records of a partition from offset on, waiting up to
// maxWait for some to arrive, and returns them with the offset to ask for
// next and the partition's high watermark. Nothing new by maxWait is not an
// error: it returns no records and next equal to offset. Repeated calls
// follow a partition as a Reader would, without a connection of its own,
// so one client can follow many small partitions.
func (c *Client) FetchFrom(ctx context.Context, topic string, partition int, offset int64, maxWait time.Duration) (recs []Record, next, hwm int64, err error) {
	return c.fetchRecords(ctx, topic, partition, offset, math.MaxInt64, maxWait)
}
