package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

// TestHTTP2IdleStream follows /events over TLS and HTTP/2 while nothing
// changes: the stream must get its keep-alives and go on for several
// viewer timeouts, which an armed write deadline would end with a reset.
func TestHTTP2IdleStream(t *testing.T) {
	const (
		timeout   = 300 * time.Millisecond
		keepAlive = 500 * time.Millisecond
		follow    = 8 * timeout
	)
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(100)
	h := New(e.results, Options{Interval: 20 * time.Millisecond, KeepAlive: keepAlive, ViewerTimeout: timeout})
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)

	ctx, cancel := context.WithTimeout(context.Background(), follow+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
		t.Fatalf("/events: %s over %s, want 200 over HTTP/2", res.Status, res.Proto)
	}
	start := time.Now()
	keepAlives := 0
	br := bufio.NewReader(res.Body)
	for time.Since(start) < follow {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the idle stream ended after %s and %d keep-alives: %v", time.Since(start).Round(time.Millisecond), keepAlives, err)
		}
		if strings.HasPrefix(line, ": keep-alive") {
			keepAlives++
		}
	}
	if want := int(follow/keepAlive) - 1; keepAlives < want {
		t.Errorf("%d keep-alives in %s, want at least %d", keepAlives, follow, want)
	}
}
