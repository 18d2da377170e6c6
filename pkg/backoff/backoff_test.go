package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Delays double from Min up to Max, each jittered between half and all of
// it, and Reset starts again from Min.
func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}
	for round := range 2 {
		for i, want := range []time.Duration{100, 200, 400, 500, 500} {
			want *= time.Millisecond
			if d := b.Next(); d < want/2 || d > want {
				t.Errorf("round %d, delay %d: got %s, want %s to %s", round, i, d, want/2, want)
			}
		}
		b.Reset()
	}
}

// Sleep returns at once with ctx's error once ctx has ended, whatever d.
func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := Sleep(ctx, time.Millisecond); err != nil {
		t.Errorf("live ctx: got %v, want nil", err)
	}
	cancel()
	for _, d := range []time.Duration{0, time.Hour} {
		if err := Sleep(ctx, d); err != context.Canceled {
			t.Errorf("ended ctx, %s: got %v, want %v", d, err, context.Canceled)
		}
	}
}

// Retry stops at the first success, at an error retriable refuses, or at
// ctx's end, and tells retrying of each failed attempt.
func TestRetry(t *testing.T) {
	boom, fatal := errors.New("boom"), errors.New("fatal")
	b := Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	retriable := func(err error) bool { return err != fatal }
	for _, tc := range []struct {
		name     string
		results  []error
		want     error
		attempts int
	}{
		{"success after two failures", []error{boom, boom, nil}, nil, 3},
		{"a permanent error", []error{boom, fatal, nil}, fatal, 2},
	} {
		calls, told := 0, 0
		_, err := Retry(context.Background(), b, func() (int, error) {
			calls++
			return calls, tc.results[calls-1]
		}, retriable, func(attempt int, _ error, _ time.Duration) {
			told++
			if attempt != told {
				t.Errorf("%s: told of attempt %d, want %d", tc.name, attempt, told)
			}
		})
		if err != tc.want || calls != tc.attempts || told != tc.attempts-1 {
			t.Errorf("%s: err %v after %d calls (%d told), want %v after %d", tc.name, err, calls, told, tc.want, tc.attempts)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := Retry(ctx, b, func() (int, error) { return 0, boom }, retriable, nil); err != boom {
		t.Errorf("ended ctx: got %v, want the last error %v", err, boom)
	}
}
