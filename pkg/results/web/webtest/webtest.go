// Package webtest drives the live results page in headless Chromium for
// tests: a small Chrome DevTools Protocol client over
// --remote-debugging-pipe (JSON messages ended by a NUL byte, written to the
// browser's fd 3 and read from its fd 4; no WebSocket, no dependency), and
// helpers that read the totals the page shows and compare them with
// results. Both the page's own test and the end-to-end run use it.
package webtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// Browser is a headless Chromium driven over its debugging pipe.
type Browser struct {
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

// Start runs Chromium at bin; it is closed, bounded, when the test ends.
func Start(t testing.TB, bin string) *Browser {
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
	b := &Browser{w: toBrowserW, pending: map[int64]chan cdpMessage{}}
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

func (b *Browser) read(r io.Reader) {
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
func (b *Browser) call(ctx context.Context, session, method string, params, result any) error {
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

// PageErrors returns the exceptions and console errors of every page so
// far.
func (b *Browser) PageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// Page is one tab, driven through a flat session.
type Page struct {
	b       *Browser
	session string
}

// NewPage opens a blank tab.
func (b *Browser) NewPage(ctx context.Context, t testing.TB) *Page {
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
	p := &Page{b: b, session: attached.SessionID}
	p.Call(ctx, t, "Page.enable", nil, nil)
	p.Call(ctx, t, "Runtime.enable", nil, nil)
	return p
}

// Call sends a DevTools command to the page and decodes its result into
// result (unless nil); an error fails the test.
func (p *Page) Call(ctx context.Context, t testing.TB, method string, params, result any) {
	t.Helper()
	if err := p.b.call(ctx, p.session, method, params, result); err != nil {
		t.Fatal(err)
	}
}

// Navigate loads url.
func (p *Page) Navigate(ctx context.Context, t testing.TB, url string) {
	t.Helper()
	p.Call(ctx, t, "Page.navigate", map[string]any{"url": url}, nil)
}

// Eval evaluates a JavaScript expression for its effect.
func (p *Page) Eval(ctx context.Context, t testing.TB, expr string) {
	t.Helper()
	p.EvalInto(ctx, t, expr, nil)
}

// EvalInto evaluates a JavaScript expression and decodes its value into v.
func (p *Page) EvalInto(ctx context.Context, t testing.TB, expr string, v any) {
	t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	p.Call(ctx, t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if res.ExceptionDetails != nil {
		t.Fatalf("evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	if v != nil {
		if err := json.Unmarshal(res.Result.Value, v); err != nil {
			t.Fatalf("evaluate %q: %v", expr, err)
		}
	}
}

// Viewport sets the page's size in CSS pixels, as a phone when mobile.
func (p *Page) Viewport(ctx context.Context, t testing.TB, width, height int, mobile bool) {
	t.Helper()
	p.Call(ctx, t, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
	}, nil)
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
	var shot struct {
		Data string `json:"data"`
	}
	p.Call(ctx, t, "Page.captureScreenshot", map[string]any{
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
