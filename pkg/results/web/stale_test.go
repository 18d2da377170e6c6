package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/webtest"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/votegen"
)

// stallable is a view whose AsOf follows its clock, as a counter's does
// while it reads its checkpoints, until stall: then AsOf stays where it
// was and the clock moves on.
type stallable struct {
	e             *election
	skew          atomic.Int64 // added to the real time, ns
	mu            sync.Mutex
	last, stalled time.Time
}

func (s *stallable) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }

func (s *stallable) results() results.Results {
	r := s.e.results()
	s.mu.Lock()
	defer s.mu.Unlock()
	r.AsOf = s.stalled
	if r.AsOf.IsZero() {
		r.AsOf = s.now()
	}
	s.last = r.AsOf
	return r
}

// stall stops AsOf where it was last seen and moves the clock on by d.
func (s *stallable) stall(d time.Duration) {
	s.mu.Lock()
	s.stalled = s.last
	s.mu.Unlock()
	s.skew.Add(int64(d))
}

// ages follows /events and sends the age each message carries (events and
// keep-alives), until ctx ends.
func ages(ctx context.Context, t *testing.T, url string) <-chan float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/events: %s", res.Status)
	}
	out := make(chan float64, 100)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m struct {
				Age *float64 `json:"age_seconds"`
			}
			if json.Unmarshal([]byte(data), &m) != nil || m.Age == nil {
				continue
			}
			select {
			case out <- *m.Age:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// waitAge waits until an age of at least want comes on ages.
func waitAge(t *testing.T, what string, ages <-chan float64, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	last := -1.0
	for {
		select {
		case age, ok := <-ages:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			if last = age; age >= want {
				return
			}
		case <-deadline:
			t.Fatalf("%s: the newest age is %vs after %s, want at least %vs", what, last, timeout, want)
		}
	}
}

// TestStaleView stalls a view: the age served must grow from then on,
// though the results do not change, in /results, to a stream open since
// before, to a stream opened after, and on the page.
func TestStaleView(t *testing.T) {
	const (
		keepAlive = 300 * time.Millisecond
		stall     = 40 * time.Second // past the page's 30 s
	)
	s := &stallable{e: newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})}
	s.e.advance(100)
	h := New(s.results, Options{Interval: 20 * time.Millisecond, KeepAlive: keepAlive, Now: s.now})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := ages(ctx, t, srv.URL)
	if age := <-before; age > 1 {
		t.Fatalf("a live view's first event is %vs old", age)
	}
	s.stall(stall)
	if got := getResults(t, srv.URL); got.AgeSeconds < stall.Seconds() {
		t.Errorf("/results of a view stalled %s: %vs old", stall, got.AgeSeconds)
	}
	waitAge(t, "the stream open since before", before, stall.Seconds(), 3*keepAlive)
	waitAge(t, "a stream opened after", ages(ctx, t, srv.URL), stall.Seconds(), time.Second)
	res, _ := get(t, srv.URL+"/results")
	time.Sleep(1100 * time.Millisecond)
	if got := getResults(t, srv.URL); got.AgeSeconds < stall.Seconds()+1 {
		t.Errorf("/results a second later: %vs old, want it to keep growing", got.AgeSeconds)
	}
	// Revalidating with the tag of a second ago gets the new age, not 304.
	if again, _ := get(t, srv.URL+"/results", "If-None-Match", res.Header.Get("ETag")); again.StatusCode != http.StatusOK {
		t.Errorf("/results with the ETag of a second ago: %s, want 200 with the new age", again.Status)
	}
}

// TestStaleViewPage opens the page on a view that stalls and whose clock
// jumps 40 s: the next keep-alive must turn its indicator to stale (past
// 30 s).
func TestStaleViewPage(t *testing.T) {
	bin := webtest.Chromium(t)
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("short: no browser")
	}
	b := webtest.Start(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := &stallable{e: newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})}
	s.e.advance(100)
	h := New(s.results, Options{Interval: 100 * time.Millisecond, KeepAlive: time.Second, Now: s.now})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)

	page := b.NewPage(ctx, t)
	page.Navigate(ctx, t, srv.URL+"/")
	indicator := func() (text string, stale bool) {
		var got struct {
			Text  string
			Stale bool
		}
		page.EvalInto(ctx, t, `(() => { const f = document.getElementById("freshness");
  return {Text: f.textContent, Stale: f.classList.contains("stale")}; })()`, &got)
		return got.Text, got.Stale
	}
	deadline := time.Now().Add(20 * time.Second)
	for text, stale := indicator(); !strings.HasPrefix(text, "live") || stale; text, stale = indicator() {
		if time.Now().After(deadline) {
			t.Fatalf("the page of a live view shows %q (stale: %v)", text, stale)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stall(40 * time.Second)
	stalled := time.Now()
	// From the next keep-alive's age: well before the page would poll
	// /results, after 10 s without an event.
	deadline = time.Now().Add(5 * time.Second)
	for text, stale := indicator(); !stale; text, stale = indicator() {
		if time.Now().After(deadline) {
			t.Fatalf("the page of a view stalled 40 s shows %q, not stale", text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	text, _ := indicator()
	t.Logf("the page shows %q %s after the stall", text, time.Since(stalled).Round(100*time.Millisecond))
}
