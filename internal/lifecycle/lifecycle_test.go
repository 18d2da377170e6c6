package lifecycle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// The first actor to fail ends the group with its error, and the others
// stop in the order they were added, each after the one before returned.
func TestFirstErrorStopsTheRestInOrder(t *testing.T) {
	var mu sync.Mutex
	var stopped []string
	note := func(s string) { mu.Lock(); stopped = append(stopped, s); mu.Unlock() }
	fail := make(chan struct{})
	boom := errors.New("boom")
	var g Group
	for _, name := range []string{"count", "view"} {
		g.Go(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // a slow stop must still come first
			note(name)
			return nil
		})
	}
	g.Add(func() error { <-fail; note("http"); return boom }, func() {})
	close(fail)
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Run: %v, want %v", err, boom)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s")
	}
	if want := []string{"http", "count", "view"}; !slices.Equal(stopped, want) {
		t.Errorf("stopped %v, want %v", stopped, want)
	}
}
