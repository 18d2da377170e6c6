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

// TestBrowser loads the live page in headless Chromium while the count goes
// on, checks that the totals it shows are those of /results, that it follows
// the count without a reload, and saves screenshots for a human to look at
// (in $SCREENSHOT_DIR, or a votestream-screenshots directory in the system's
// temporary directory).
func TestBrowser(t *testing.T) {
	bin := webtest.Chromium(t)
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("short: no browser")
	}
	b := webtest.Start(t, bin) // first: its start is not the test's time
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	e := newElection(t, votegen.Config{Seed: 2024, Scale: 0.0001})
	total := e.gen.Total()
	h := New(e.results, Options{Interval: 100 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close) // before srv.Close: cleanups run last first

	page := b.NewPage(ctx, t)
	page.Viewport(ctx, t, 1280, 900, false)
	page.Navigate(ctx, t, srv.URL+"/")

	// Stage 0: nothing counted yet.
	shown := waitTotals(ctx, t, page, srv.URL, e.results())
	if shown.Winner != "" {
		t.Errorf("winner banner before any vote: %q", shown.Winner)
	}

	// Stage 1: a fifth of the votes counted.
	want := e.advance(total / 5)
	waitTotals(ctx, t, page, srv.URL, want)
	page.Eval(ctx, t, "window.__notReloaded = true")

	// Stage 2: most votes in; small states are complete and called.
	want = e.advance(total / 2)
	shown = waitTotals(ctx, t, page, srv.URL, want)
	if shown.NotReloaded != true {
		t.Error("the page reloaded to update")
	}
	if want.ElectoralVotesCalled == 0 {
		t.Error("test setup: no state called at stage 2")
	}
	page.Screenshot(ctx, t, "live-page-desktop.png")
	page.ScreenshotOf(ctx, t, `document.querySelector("#map svg")`, 2, "live-page-map.png")

	// Stage 3: everything counted, a winner.
	want = e.advance(total)
	if want.Winner == results.NoCandidate {
		t.Fatal("test setup: no winner at the end")
	}
	shown = waitTotals(ctx, t, page, srv.URL, want)
	if !strings.Contains(shown.Winner, want.WinnerName) {
		t.Errorf("winner banner: got %q, want %q in it", shown.Winner, want.WinnerName)
	}
	if shown.NotReloaded != true {
		t.Error("the page reloaded to update")
	}
	page.Viewport(ctx, t, 390, 844, true)
	page.Screenshot(ctx, t, "live-page-phone.png")

	if errs := b.PageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// waitTotals waits until the page shows want, which /results must serve
// too (within a few Intervals), and returns what it shows.
func waitTotals(ctx context.Context, t *testing.T, p *webtest.Page, base string, want results.Results) webtest.Shown {
	t.Helper()
	api := getResults(t, base)
	for deadline := time.Now().Add(5 * time.Second); api.Counted != want.Counted && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		api = getResults(t, base)
	}
	if api.Counted != want.Counted || api.Candidates != want.Candidates {
		t.Fatalf("/results: got %d counted, want %d", api.Counted, want.Counted)
	}
	shown, _ := p.WaitShows(ctx, t, 15*time.Second, func() results.Results { return api })
	return shown
}
