package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestBrowser loads the live page in headless Chromium while the count goes
// on, checks that the totals it shows are those of /results, that it follows
// the count without a reload, and saves screenshots for a human to look at
// (in $SCREENSHOT_DIR, or a votestream-screenshots directory in the system's
// temporary directory).
func TestBrowser(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found: the browser test must run in CI")
		}
		t.Skip("chromium not found")
	}
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("short: no browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	e := newElection(t, votegen.Config{Seed: 2024, Scale: 0.0001})
	total := e.gen.Total()
	h := New(e.results, Options{Interval: 100 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close) // before srv.Close: cleanups run last first

	b := startBrowser(ctx, t, bin)
	page := b.newPage(ctx, t)
	page.viewport(ctx, t, 1280, 900, false)
	page.call(ctx, t, "Page.navigate", map[string]any{"url": srv.URL + "/"}, nil)

	// Stage 0: nothing counted yet.
	shown := page.waitTotals(ctx, t, srv.URL, e.results())
	if shown.Winner != "" {
		t.Errorf("winner banner before any vote: %q", shown.Winner)
	}

	// Stage 1: a fifth of the votes counted.
	want := e.advance(total / 5)
	page.waitTotals(ctx, t, srv.URL, want)
	page.eval(ctx, t, "window.__notReloaded = true")

	// Stage 2: most votes in; small states are complete and called.
	want = e.advance(total / 2)
	shown = page.waitTotals(ctx, t, srv.URL, want)
	if shown.NotReloaded != true {
		t.Error("the page reloaded to update")
	}
	if want.ElectoralVotesCalled == 0 {
		t.Error("test setup: no state called at stage 2")
	}
	page.screenshot(ctx, t, "live-page-desktop.png")
	page.screenshotOf(ctx, t, `document.querySelector("#map svg")`, 2, "live-page-map.png")

	// Stage 3: everything counted, a winner.
	want = e.advance(total)
	if want.Winner == results.NoCandidate {
		t.Fatal("test setup: no winner at the end")
	}
	shown = page.waitTotals(ctx, t, srv.URL, want)
	if !strings.Contains(shown.Winner, want.WinnerName) {
		t.Errorf("winner banner: got %q, want %q in it", shown.Winner, want.WinnerName)
	}
	if shown.NotReloaded != true {
		t.Error("the page reloaded to update")
	}
	page.viewport(ctx, t, 390, 844, true)
	page.screenshot(ctx, t, "live-page-phone.png")

	if errs := b.pageErrors(); len(errs) > 0 {
		t.Errorf("errors in the page:\n%s", strings.Join(errs, "\n"))
	}
}

// shownTotals is what the page displays, read from its DOM.
type shownTotals struct {
	Counted, Expected, EVCalled string
	Votes, EVWon, EVLeading     []string
	StateCounted                []string
	Labels                      int
	Winner                      string
	NotReloaded                 any
}

const readTotals = `JSON.stringify((() => {
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

// waitTotals waits until the page shows want, which /results must serve
// too, and returns what it shows.
func (p *page) waitTotals(ctx context.Context, t *testing.T, base string, want results.Results) shownTotals {
	t.Helper()
	api := getResults(t, base)
	if api.Counted != want.Counted || api.Candidates != want.Candidates {
		t.Fatalf("/results: got %d counted, want %d", api.Counted, want.Counted)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var got shownTotals
	var mismatch string
	for {
		var s string
		p.evalInto(ctx, t, readTotals, &s)
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("read totals: %v", err)
		}
		mismatch = compareShown(&got, &api)
		if mismatch == "" {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page does not show /results after 15s: %s", mismatch)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// compareShown says how the page differs from r, or "".
func compareShown(got *shownTotals, r *results.Results) string {
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

// digits reads a number shown with thousands separators.
func digits(s string) (int64, error) {
	return strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(s), ",", ""), 10, 64)
}

func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// A small Chrome DevTools Protocol client over --remote-debugging-pipe:
// messages are JSON, each ended by a NUL byte, written to the browser's
// fd 3 and read from its fd 4. No WebSocket and no dependency needed.
type browser struct {
	w io.Writer

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	errs    []string // exceptions and console errors from pages
	readErr error
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

func startBrowser(ctx context.Context, t *testing.T, bin string) *browser {
	t.Helper()
	toBrowser, toBrowserW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromBrowser, fromBrowserW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+t.TempDir(), "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowserW} // fd 3, fd 4
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toBrowser.Close()
	fromBrowserW.Close()
	b := &browser{w: toBrowserW, pending: map[int64]chan cdpMessage{}}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b.read(fromBrowser)
	}()
	t.Cleanup(func() {
		// Ask politely, then insist; wait a bounded time either way.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.call(closeCtx, "", "Browser.close", nil, nil)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		toBrowserW.Close()
		fromBrowser.Close()
		<-readDone
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", tail(stderr.String(), 4000))
		}
	})
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = fmt.Errorf("read from chromium: %w", err)
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(line[:len(line)-1], &m); err != nil {
			continue
		}
		b.mu.Lock()
		if ch, ok := b.pending[m.ID]; ok && m.ID != 0 {
			delete(b.pending, m.ID)
			ch <- m
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			b.errs = append(b.errs, "exception: "+string(m.Params))
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(m.Params, &p) == nil && p.Type == "error" {
				b.errs = append(b.errs, "console.error: "+string(m.Params))
			}
		}
		b.mu.Unlock()
	}
}

// call sends one command and waits for its reply, at most until ctx ends.
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		raw = []byte("{}")
	}
	ch := make(chan cdpMessage, 1)
	b.mu.Lock()
	if b.readErr != nil {
		b.mu.Unlock()
		return b.readErr
	}
	b.nextID++
	id := b.nextID
	b.pending[id] = ch
	b.mu.Unlock()
	msg, err := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: raw})
	if err != nil {
		return err
	}
	if _, err := b.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("%s: write: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: chromium went away", method)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// page is one tab, driven through a flat session.
type page struct {
	b       *browser
	session string
}

func (b *browser) newPage(ctx context.Context, t *testing.T) *page {
	t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached); err != nil {
		t.Fatal(err)
	}
	p := &page{b: b, session: attached.SessionID}
	p.call(ctx, t, "Page.enable", nil, nil)
	p.call(ctx, t, "Runtime.enable", nil, nil)
	return p
}

func (p *page) call(ctx context.Context, t *testing.T, method string, params, result any) {
	t.Helper()
	if err := p.b.call(ctx, p.session, method, params, result); err != nil {
		t.Fatal(err)
	}
}

func (p *page) eval(ctx context.Context, t *testing.T, expr string) {
	t.Helper()
	p.evalInto(ctx, t, expr, nil)
}

// evalInto evaluates a JavaScript expression and decodes its value into v.
func (p *page) evalInto(ctx context.Context, t *testing.T, expr string, v any) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	p.call(ctx, t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		t.Fatalf("evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	if v != nil {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			t.Fatalf("evaluate %q: %v", expr, err)
		}
	}
}

func (p *page) viewport(ctx context.Context, t *testing.T, width, height int, mobile bool) {
	t.Helper()
	p.call(ctx, t, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
	}, nil)
}

// screenshot saves the whole page as a PNG and logs where.
func (p *page) screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	p.screenshotOf(ctx, t, "document.documentElement", 1, name)
}

// screenshotOf saves the element a JavaScript expression finds as a PNG,
// scaled, and logs where.
func (p *page) screenshotOf(ctx context.Context, t *testing.T, element string, scale float64, name string) {
	t.Helper()
	var box struct {
		X, Y, Width, Height float64
	}
	p.evalInto(ctx, t, `(() => {
  const e = `+element+`, r = e.getBoundingClientRect();
  return {X: r.left + scrollX, Y: r.top + scrollY, Width: e.clientWidth, Height: e.scrollHeight};
})()`, &box)
	var shot struct {
		Data string `json:"data"`
	}
	p.call(ctx, t, "Page.captureScreenshot", map[string]any{
		"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": box.X, "y": box.Y, "width": box.Width, "height": box.Height, "scale": scale},
	}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
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
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%.0fx%.0f CSS pixels)", path, box.Width, box.Height)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
