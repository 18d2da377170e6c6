package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
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
	const parts = 2
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	gen := votegen.Config{Seed: 11, Scale: 0.0001}
	want, err := votegen.TrueTotals(gen)
	if err != nil {
		t.Fatal(err)
	}
	brokers := cluster.ListenAddrs()[0]
	c := startCounter(t, []string{"KAFKA_BROKERS=" + brokers, "KAFKA_TOPIC=votes", "KAFKA_CHECKPOINT_TOPIC=ckpt",
		"KAFKA_DLQ_TOPIC=dlq", fmt.Sprintf("KAFKA_PARTITIONS=%d", parts), "GROUP_ID=g", "HTTP_ADDR=127.0.0.1:0",
		"BATCH_MAX_WAIT=100ms", "GROUP_SESSION_TIMEOUT=2s", "SCALE=0.0001", "HTTP_MAX_VIEWERS=0"}, "a")
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
	publish(t, brokers, parts, gen, want.Total())
	waitExact(t, &want, c.addr)
	for deadline := time.Now().Add(30 * time.Second); results().Counted != want.Total(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/results does not show the %d votes counted", want.Total())
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
