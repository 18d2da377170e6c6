// Package webtest drives the live results page in headless Chromium for
// tests, through chromedp, and reads the totals the page shows to compare
// them with results. Both the page's own test and the end-to-end run use
// it.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/results"
)

// Chromium returns the browser's path. When there is none it skips the
// test, or fails it in CI (CI set), where the browser test must run.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: the browser test must run in CI")
	}
	t.Skip("chromium not found")
	return ""
}

// startTimeout bounds Chromium's start.
const startTimeout = 2 * time.Minute

// Browser is a headless Chromium driven with chromedp.
type Browser struct {
	ctx context.Context // chromedp's browser context

	mu   sync.Mutex
	errs []string // exceptions and console errors from pages
}

// Start runs Chromium at bin; it is closed, bounded, when the test ends.
func Start(t testing.TB, bin string) *Browser {
	t.Helper()
	var stderr testbed.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.CombinedOutput(&stderr))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx}
	// The first Do starts the browser; it lives as long as ctx, so it gets
	// no timeout of its own: a watchdog cancels a start that hangs. The
	// bound is generous: the first start after the machine came up took
	// 32 s here with 1 s of CPU (it waited, on the disk most likely), and
	// CI's first starts failed a 30 s bound.
	began := time.Now()
	watchdog := time.AfterFunc(startTimeout, cancel)
	err := chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v (after %s)\n%s", err, time.Since(began).Round(time.Millisecond), tail(stderr.String(), 4000))
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Logf("chromium took %s to start", took.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		// Ask politely, then insist: the allocator kills what is left.
		closed := make(chan struct{})
		go func() {
			_ = chromedp.Cancel(ctx)
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output:\n%s", tail(stderr.String(), 4000))
		}
	})
	return b
}

// record keeps a page's exceptions and console errors.
func (b *Browser) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = fmt.Sprintf("exception: %s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
		if d.Exception != nil {
			msg += ": " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		msg = "console.error: " + strings.Join(args, " ")
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

// PageErrors returns the exceptions and console errors of every page so
// far.
func (b *Browser) PageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Page is one tab.
type Page struct {
	ctx context.Context // chromedp's tab context
}

// NewPage opens a blank tab.
func (b *Browser) NewPage(ctx context.Context, t testing.TB) *Page {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first Do, so that one
	// is the tab's own; ctx ending stops it through cancel.
	stop := context.AfterFunc(ctx, cancel)
	err := chromedp.Do(tab)
	stop()
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	p := &Page{ctx: tab}
	if err := chromedp.Listen(tab, b.record); err != nil {
		t.Fatal(err)
	}
	return p
}

// bounded is the tab's context, ended when ctx ends too.
func (p *Page) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(p.ctx)
	stop := context.AfterFunc(ctx, cancel)
	return c, func() {
		stop()
		cancel()
	}
}

// do runs actions on the tab until ctx ends; an error fails the test.
func (p *Page) do(ctx context.Context, t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := p.bounded(ctx)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Navigate loads url.
func (p *Page) Navigate(ctx context.Context, t testing.TB, url string) {
	t.Helper()
	p.do(ctx, t, "navigate to "+url, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression for its effect.
func (p *Page) Eval(ctx context.Context, t testing.TB, expr string) {
	t.Helper()
	p.do(ctx, t, fmt.Sprintf("evaluate %q", expr), chromedp.Evaluate[chromedp.Void](expr))
}

// EvalInto evaluates a JavaScript expression and decodes its value into v.
func (p *Page) EvalInto(ctx context.Context, t testing.TB, expr string, v any) {
	t.Helper()
	c, cancel := p.bounded(ctx)
	defer cancel()
	raw, err := chromedp.Run(c, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		t.Fatalf("evaluate %q: %v", expr, err)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("evaluate %q: %v", expr, err)
		}
	}
}

// Viewport sets the page's size in CSS pixels, as a phone when mobile.
func (p *Page) Viewport(ctx context.Context, t testing.TB, width, height int, mobile bool) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	p.do(ctx, t, "set the viewport", chromedp.EmulateViewport(int64(width), int64(height), opts...))
}

// Screenshot saves the whole page as a PNG named name, logs its path and
// returns it.
func (p *Page) Screenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	return p.ScreenshotOf(ctx, t, "document.documentElement", 1, name)
}

// ScreenshotOf saves the element a JavaScript expression finds as a PNG,
// scaled, in $SCREENSHOT_DIR or else a votestream-screenshots directory in
// the system's temporary directory; it logs the path and returns it.
func (p *Page) ScreenshotOf(ctx context.Context, t testing.TB, element string, scale float64, name string) string {
	t.Helper()
	var box struct {
		X, Y, Width, Height float64
	}
	p.EvalInto(ctx, t, `(() => {
  const e = `+element+`, r = e.getBoundingClientRect();
  return {X: r.left + scrollX, Y: r.top + scrollY, Width: e.clientWidth, Height: e.scrollHeight};
})()`, &box)
	c, cancel := p.bounded(ctx)
	defer cancel()
	beyond := true
	shot, err := chromedp.Call(c, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: &beyond,
		Clip: &page.Viewport{X: box.X, Y: box.Y, Width: box.Width, Height: box.Height, Scale: scale},
	})
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "votestream-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%.0fx%.0f CSS pixels)", path, box.Width, box.Height)
	return path
}

// Shown is what the live page displays, read from its DOM.
type Shown struct {
	Counted, Expected, EVCalled string
	Votes, EVWon, EVLeading     []string
	StateCounted                []string
	Labels                      int
	Winner                      string
	// NotReloaded is window.__notReloaded: set it with Eval, and it is
	// still there only if the page did not reload.
	NotReloaded any
}

const readShown = `JSON.stringify((() => {
  const q = (s) => { const e = document.querySelector(s); return e ? e.textContent : ""; };
  const all = (s) => [...document.querySelectorAll(s)].map((e) => e.textContent);
  const w = document.getElementById("winner");
  return {
    Counted: q("#counted"), Expected: q("#expected"), EVCalled: q("#ev-called"),
    Votes: all("#popular tbody .votes"), EVWon: all("#popular tbody .ev-won"), EVLeading: all("#popular tbody .ev-leading"),
    StateCounted: all("#states tbody .counted"),
    Labels: document.querySelectorAll("#map .labels text").length,
    Winner: w && !w.hidden ? w.textContent : "",
    NotReloaded: window.__notReloaded,
  };
})())`

// Shown reads what the page displays now.
func (p *Page) Shown(ctx context.Context, t testing.TB) Shown {
	t.Helper()
	var s string
	p.EvalInto(ctx, t, readShown, &s)
	var got Shown
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("read totals: %v", err)
	}
	return got
}

// WaitShows waits up to timeout until the page shows what source returns,
// asking source again on every try (it may be a live /results), and returns
// both. It fails the test with the last difference otherwise.
func (p *Page) WaitShows(ctx context.Context, t testing.TB, timeout time.Duration, source func() results.Results) (Shown, results.Results) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		want := source()
		got := p.Shown(ctx, t)
		mismatch := Compare(&got, &want)
		if mismatch == "" {
			return got, want
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page does not show the results after %s: %s", timeout, mismatch)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Compare says how the page differs from r, or returns "".
func Compare(got *Shown, r *results.Results) string {
	eq := func(what, shown string, want int64) string {
		if n, err := digits(shown); err != nil || n != want {
			return fmt.Sprintf("%s: shown %q, want %d", what, shown, want)
		}
		return ""
	}
	if got.Labels != len(r.States) {
		return fmt.Sprintf("map: %d labels, want %d", got.Labels, len(r.States))
	}
	if len(got.Votes) != len(r.Candidates) || len(got.StateCounted) != len(r.States) {
		return fmt.Sprintf("tables: %d candidates and %d states", len(got.Votes), len(got.StateCounted))
	}
	checks := []string{
		eq("counted", got.Counted, r.Counted),
		eq("expected", got.Expected, r.Expected),
		eq("electoral votes called", got.EVCalled, int64(r.ElectoralVotesCalled)),
	}
	for i, c := range r.Candidates {
		checks = append(checks,
			eq(c.Name+" votes", got.Votes[i], c.Votes),
			eq(c.Name+" electoral votes won", got.EVWon[i], int64(c.ElectoralVotesWon)),
			eq(c.Name+" electoral votes leading", got.EVLeading[i], int64(c.ElectoralVotesLeading)))
	}
	for i, s := range r.States {
		checks = append(checks, eq(s.Name+" counted", got.StateCounted[i], s.Counted))
	}
	for _, c := range checks {
		if c != "" {
			return c
		}
	}
	return ""
}

// Counted64 is the number of votes the page shows counted, -1 if unreadable.
func (s *Shown) Counted64() int64 {
	n, err := digits(s.Counted)
	if err != nil {
		return -1
	}
	return n
}

// digits reads a number shown with thousands separators.
func digits(s string) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 10, 64)
}

// GetResults reads base's /results.
func GetResults(ctx context.Context, base string) (results.Results, error) {
	var r results.Results
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/results", nil)
	if err != nil {
		return r, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET %s/results: %s", base, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("decode %s/results: %w", base, err)
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
