package kafkaio

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"
)

// Backoff is jittered exponential backoff: each Wait sleeps for about the
// current delay, then doubles it up to Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Wait sleeps for the next delay or until ctx ends, returning ctx's error
// if it ended first.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep waits d, or until ctx ends: then it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Next returns the next delay, jittered between half and all of it.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = max(b.Min, time.Millisecond)
	default:
		b.cur = min(2*b.cur, max(b.Max, b.Min))
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset starts the delays again from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Retriable reports whether retrying may fix err: a temporary Kafka error
// (a partition between leaders, a coordinator loading, too few replicas in
// sync) or the connection to a broker failing (a broker restarting).
func Retriable(err error) bool {
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// retry calls fn until it succeeds, returns an error Retriable does not
// accept, or ctx ends; it logs each retry as what.
func (c *Client) retry(ctx context.Context, what string, fn func() error) error {
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !Retriable(err) || ctx.Err() != nil {
			return err
		}
		if attempt > 1 {
			c.log.Warn(what+" failed, retrying", "attempt", attempt, "err", err)
		}
		if b.Wait(ctx) != nil {
			return err
		}
	}
}
