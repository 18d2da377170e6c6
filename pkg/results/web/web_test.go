package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// election is a results source that counts a generated election a batch at
// a time, as a counter would.
type election struct {
	mu       sync.Mutex
	gen      *votegen.Generator
	tally    vote.Tally
	expected [vote.NumStates]int64
	res      results.Results
}

func newElection(t testing.TB, cfg votegen.Config) *election {
	t.Helper()
	gen, err := votegen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	expected, err := votegen.Quotas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &election{gen: gen, expected: expected}
	e.advance(0)
	return e
}

// advance counts n more votes (fewer at the end) and returns the new results.
func (e *election) advance(n int64) results.Results {
	e.mu.Lock()
	defer e.mu.Unlock()
	var v vote.Vote
	for ; n > 0 && e.gen.Next(&v); n-- {
		e.tally.Add(&v)
	}
	e.res = results.Compute(&e.tally, e.expected)
	e.res.AsOf = time.Now()
	e.res.Offsets = map[int]int64{0: e.gen.Seq()}
	e.res.Source = "test"
	return e.res
}

func (e *election) results() results.Results {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.res
}

func TestRoutes(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(1000)
	srv := httptest.NewServer(New(e.results, Options{}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/", "text/html", `<script src="/assets/app.js">`, 200},
		{"/assets/app.js", "text/javascript", "EventSource", 200},
		{"/assets/style.css", "text/css", "--c0", 200},
		{"/assets/us-map.svg", "image/svg+xml", `data-code="WY"`, 200},
		{"/results", "application/json", `"electoral_votes_to_win":270`, 200},
		{"/nope", "text/plain", "404", 404},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status {
				t.Errorf("got status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
				t.Errorf("got content type %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("no %q in the body", tc.contains)
			}
		})
	}
}

// TestNoRemoteAssets keeps the page self-contained: nothing from a CDN.
func TestNoRemoteAssets(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "us-map.svg"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
		s = strings.ReplaceAll(s, `"http://www.w3.org/2000/svg"`, "")
		if i := strings.Index(s, "http"); i >= 0 {
			t.Errorf("%s: remote reference %q", name, s[i:min(len(s), i+60)])
		}
	}
}

func TestResultsJSON(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	want := e.advance(5000)
	now := want.AsOf.Add(1500 * time.Millisecond)
	srv := httptest.NewServer(New(e.results, Options{Now: func() time.Time { return now }}))
	t.Cleanup(srv.Close)

	got := getResults(t, srv.URL)
	if got.Counted != want.Counted || got.Candidates != want.Candidates || got.States != want.States {
		t.Errorf("got counted %d, want %d; or candidates or states differ", got.Counted, want.Counted)
	}
	if got.AgeSeconds != 1.5 {
		t.Errorf("got age %v s, want 1.5", got.AgeSeconds)
	}
	if got.Offsets[0] != 5000 {
		t.Errorf("got offsets %v, want partition 0 at 5000", got.Offsets)
	}
}

func TestEvents(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(100)
	h := New(e.results, Options{Interval: 10 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := res.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("got content type %q", got)
	}
	events := make(chan results.Results)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var r results.Results
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				t.Errorf("decode event: %v", err)
				return
			}
			select {
			case events <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func() results.Results {
		t.Helper()
		select {
		case r, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return r
		case <-ctx.Done():
			t.Fatal("no event in time")
		}
		return results.Results{}
	}

	if got := next(); got.Counted != 100 {
		t.Fatalf("first event: got %d counted, want 100", got.Counted)
	}
	e.advance(250)
	if got := next(); got.Counted != 350 {
		t.Fatalf("after a change: got %d counted, want 350", got.Counted)
	}

	// Close ends the stream, so http.Server.Shutdown need not wait for it.
	h.Close()
	select {
	case r, ok := <-events:
		if ok {
			t.Fatalf("got an event after Close: %d counted", r.Counted)
		}
	case <-ctx.Done():
		t.Fatal("stream still open after Close")
	}
}

func getResults(t *testing.T, base string) results.Results {
	t.Helper()
	res, err := http.Get(base + "/results")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r results.Results
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatalf("decode /results: %v", err)
	}
	return r
}
