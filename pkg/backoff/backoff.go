// Package backoff is the one way votestream waits between attempts:
// jittered exponential delays, a sleep that ends with its context, and
// Retry, the loop around them.
package backoff

import (
	"context"
	"math/rand/v2"
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

// Retry calls fn until it succeeds, returns an error retriable does not
// accept, or ctx ends, waiting b's next delay between attempts; it then
// returns fn's last result. retrying, if not nil, is told of each failed
// attempt (from 1) and the delay before the next.
func Retry[T any](ctx context.Context, b Backoff, fn func() (T, error), retriable func(error) bool,
	retrying func(attempt int, err error, delay time.Duration)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if err == nil || ctx.Err() != nil || !retriable(err) {
			return v, err
		}
		d := b.Next()
		if retrying != nil {
			retrying(attempt, err, d)
		}
		if Sleep(ctx, d) != nil {
			return v, err
		}
	}
}
