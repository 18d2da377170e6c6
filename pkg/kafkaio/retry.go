package kafkaio

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/backoff"
)

// Retriable reports whether retrying may fix err: a temporary Kafka error
// (a partition between leaders, a coordinator loading, too few replicas in
// sync), the connection to a broker failing (a broker restarting), or an
// error of code -1, UNKNOWN. kafka-go's ListOffsets sends the first and
// last offsets as two requests and reports one that failed on its
// connection as -1 (the nemesis's seed 2 saw it while a broker was killed),
// and a broker answers -1 when a request failed inside it, as one may while
// the cluster changes. The callers retry with a bounded backoff and log
// each attempt, so a -1 that persists is seen, not silent.
func Retriable(err error) bool {
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() || errors.Is(err, kafka.Unknown) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retry calls fn until it succeeds, returns an error Retriable does not
// accept, or ctx ends; it logs each retry after the first as what.
func (c *Client) retry(ctx context.Context, what string, fn func() error) error {
	_, err := backoff.Retry(ctx, retryBackoff, func() (struct{}, error) { return struct{}{}, fn() }, Retriable,
		func(attempt int, err error, _ time.Duration) {
			if attempt > 1 {
				c.log.Warn(what+" failed, retrying", "attempt", attempt, "err", err)
			}
		})
	return err
}

// retryBackoff is the backoff between attempts at a Kafka request.
var retryBackoff = backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
