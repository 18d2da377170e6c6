package web

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestBrowserRefusedPolls opens the page in Chromium on a replica whose
// only event stream is taken: /events answers 503, and the page must
// follow the count by polling /results instead.
func TestBrowserRefusedPolls(t *testing.T) {
	bin := webtest.Chromium(t)
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("short: no browser")
	}
	b := webtest.Start(t, bin) // first: its start is not the test's time
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newElection(t, votegen.Config{Seed: 2024, Scale: 0.0001})
	h := New(e.results, Options{Interval: 100 * time.Millisecond, MaxViewers: 1})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)

	taken, _ := stream(ctx, t, srv.URL)
	if _, ok := <-taken; !ok {
		t.Fatal("the one stream allowed ended")
	}
	page := b.NewPage(ctx, t)
	page.Navigate(ctx, t, srv.URL+"/")
	for _, n := range []int64{e.gen.Total() / 4, e.gen.Total()} {
		want := e.advance(n)
		// Polled every 2 s: well within 6 s (the old page waited 10 s).
		page.WaitShows(ctx, t, 6*time.Second, func() results.Results { return want })
	}
	if h.Refused() == 0 {
		t.Error("the page's event stream was not refused: the test did not test the fallback")
	}
	var text string
	page.EvalInto(ctx, t, `document.getElementById("freshness").textContent`, &text)
	if !strings.Contains(text, "reconnecting") {
		t.Errorf("freshness %q: want it to say the page is not live", text)
	}
	if errs := b.PageErrors(); len(errs) > 0 {
		for _, e := range errs {
			// Chromium reports the refused stream itself; nothing else may fail.
			if !strings.Contains(e, "503") && !strings.Contains(e, "events") {
				t.Errorf("error in the page: %s", e)
			}
		}
	}
}
