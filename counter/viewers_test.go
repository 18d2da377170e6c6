package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
)

// TestViewerLimit: open viewers raise the limit by their budget, and a
// live heap near it (handlers of a burst of connections waiting for CPU)
// keeps the limit burstHeadroom above it, so the GC does not run back to
// back.
func TestViewerLimit(t *testing.T) {
	const base = 40 << 20
	for _, tc := range []struct {
		name          string
		viewers, live int64
		want          int64
	}{
		{"no viewers, small heap", 0, 6 << 20, base},
		{"10,000 viewers, steady", 10000, 18 << 20, base + 10000*viewerMemory},
		{"a burst", 5000, 70 << 20, 70<<20 + burstHeadroom},
	} {
		if got := viewerLimit(base, tc.viewers, tc.live); got != tc.want {
			t.Errorf("%s: viewerLimit(%d, %d, %d) = %d, want %d", tc.name, base, tc.viewers, tc.live, got, tc.want)
		}
	}
}

// TestNoEventStreams starts a counter with HTTP_MAX_VIEWERS=0: /events
// answers 503 with Retry-After, no viewer is ever counted (so the memory
// budget stays put), and the live page in Chromium follows the count by
// polling /results.
func TestNoEventStreams(t *testing.T) {
	bin := webtest.Chromium(t)
	b := webtest.Start(t, bin) // first: its start is not the test's time
	e := newTestElection(t, 11, 2, "HTTP_MAX_VIEWERS=0")
	c := startCounter(t, e.env, "a")
	base := "http://" + c.addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Fatalf("/events with HTTP_MAX_VIEWERS=0: %s, Retry-After %q; want 503 and a Retry-After", res.Status, res.Header.Get("Retry-After"))
		}
	}

	page := b.NewPage(ctx, t)
	page.Navigate(ctx, t, base+"/")
	results := func() results.Results {
		r, err := webtest.GetResults(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	page.WaitShows(ctx, t, 20*time.Second, results)
	e.publish(t)
	waitExact(t, &e.want, c.addr)
	for deadline := time.Now().Add(30 * time.Second); results().Counted != e.want.Total(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/results does not show the %d votes counted", e.want.Total())
		}
	}
	// Polled every 2 s.
	page.WaitShows(ctx, t, 10*time.Second, results)
	var freshness string
	page.EvalInto(ctx, t, `document.getElementById("freshness").textContent`, &freshness)
	if !strings.Contains(freshness, "reconnecting") {
		t.Errorf("freshness %q: want it to say the page is not live (no event stream)", freshness)
	}

	fams, err := testbed.Metrics(ctx, c.addr, "votestream_http_viewers", "votestream_http_viewers_refused_total")
	if err != nil {
		t.Fatal(err)
	}
	open := fams["votestream_http_viewers"].GetMetric()[0].GetGauge().GetValue()
	refused := fams["votestream_http_viewers_refused_total"].GetMetric()[0].GetCounter().GetValue()
	if open != 0 || refused < 4 {
		// The memory budget grows with the viewers open.
		t.Errorf("%v viewers open, %v refused; want none open and the 3 requests and the page's refused", open, refused)
	}
	c.stop(t)
}
