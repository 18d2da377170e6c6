package viewers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

// TestStandIn checks that the stand-in serves what the viewers run's
// client reads: a 200 event stream whose chunks keep coming, and
// /results with its ETag answered 304, an ETag that changes.
func TestStandIn(t *testing.T) {
	want, err := votegen.TrueTotals(votegen.Config{Seed: 1, Scale: 0.0002})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStandIn(want)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := connectViewers(ctx, s.addr, 20)
	if err != nil {
		t.Fatal(err)
	}
	l.startPolling(4096) // each connection asks 16 at a time, every 250 ms
	time.Sleep(2500 * time.Millisecond)
	if n := l.ended(); n != 0 {
		t.Errorf("%d viewers' streams ended while the stand-in ran", n)
	}
	l.close() // the viewers' goroutines are done: their pieces can be read
	for i, v := range l.viewers {
		if len(v.got) < 3 {
			t.Errorf("viewer %d got %d pieces in 2.5 s, want the start and one a second", i, len(v.got))
		}
	}
	if l.polls.Load() == 0 || l.unchanged.Load() == 0 || l.pollErrs.Load() != 0 {
		t.Errorf("polls %d, %.0f%% 304, %d errors", l.polls.Load(), 100*l.notModified(), l.pollErrs.Load())
	}
	// The ETag changes once a second, as a count's results do.
	first := standInETag(t, s.addr)
	for deadline := time.Now().Add(10 * time.Second); standInETag(t, s.addr) == first; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/results kept ETag %s for 10 s", first)
		}
	}
}

// standInETag is the ETag of a 200 answer to /results.
func standInETag(t *testing.T, addr string) string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/results")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("ETag") == "" {
		t.Fatalf("/results: %s, ETag %q", res.Status, res.Header.Get("ETag"))
	}
	return res.Header.Get("ETag")
}
