package kafkaio

import (
	"context"
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
