package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// The transport would otherwise ask for gzip and undo it silently.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// TestResultsEncodedOnce checks that /results serves the same bytes to
// every request until the results or their age change (the clock is
// stopped here), gzipped for who asks, and 304 to a client that has them.
func TestResultsEncodedOnce(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(1000)
	stopped := time.Now().Add(time.Second)
	h := New(e.results, Options{Interval: 10 * time.Millisecond, Now: func() time.Time { return stopped }})
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	res1, body1 := get(t, srv.URL+"/results")
	_, body2 := get(t, srv.URL+"/results")
	etag := res1.Header.Get("ETag")
	if !bytes.Equal(body1, body2) || etag == "" || res1.Header.Get("Content-Length") == "" {
		t.Fatalf("two requests got different bodies, or no ETag (%q) or length", etag)
	}
	gzRes, gzBody := get(t, srv.URL+"/results", "Accept-Encoding", "br, gzip;q=0.8")
	if gzRes.Header.Get("Content-Encoding") != "gzip" || gzRes.Header.Get("ETag") == etag {
		t.Fatalf("gzip reply: encoding %q, ETag %q (plain %q)", gzRes.Header.Get("Content-Encoding"), gzRes.Header.Get("ETag"), etag)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzBody))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, body1) {
		t.Fatalf("gunzipped body differs from the plain one (%v)", err)
	}
	if _, again := get(t, srv.URL+"/results", "Accept-Encoding", "gzip"); !bytes.Equal(again, gzBody) {
		t.Error("a second gzip reply has other bytes: compressed twice?")
	}
	if res, _ := get(t, srv.URL+"/results", "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}

	res, body := get(t, srv.URL+"/results", "If-None-Match", `"other", `+etag)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match with the current ETag: got %s, %d bytes, ETag %q; want 304, none, %q", res.Status, len(body), res.Header.Get("ETag"), etag)
	}

	e.advance(500)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, body := get(t, srv.URL+"/results", "If-None-Match", etag)
		if res.StatusCode == http.StatusOK && res.Header.Get("ETag") != etag && bytes.Contains(body, []byte(`"counted":1500`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a change: still %s with ETag %q", res.Status, res.Header.Get("ETag"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stream opens /events and sends each event's data on the returned channel.
func stream(ctx context.Context, t *testing.T, url string) (<-chan string, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 100)
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		close(events)
		return events, res
	}
	go func() {
		defer close(events)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				select {
				case events <- data:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return events, res
}

func TestViewerLimit(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	h := New(e.results, Options{Interval: 10 * time.Millisecond, MaxViewers: 2})
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ctx1, cancel1 := context.WithCancel(ctx)
	first, _ := stream(ctx1, t, srv.URL)
	second, _ := stream(ctx, t, srv.URL)
	for _, s := range []<-chan string{first, second} {
		if _, ok := <-s; !ok {
			t.Fatal("a stream within the limit ended")
		}
	}
	_, res := stream(ctx, t, srv.URL)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "30" {
		t.Fatalf("a third viewer: got %s, Retry-After %q; want 503, 30", res.Status, res.Header.Get("Retry-After"))
	}
	if h.Refused() != 1 || h.Viewers() != 2 {
		t.Errorf("refused %d, viewers %d; want 1, 2", h.Refused(), h.Viewers())
	}
	// /results still answers, and a place frees when a viewer leaves.
	if r, _ := get(t, srv.URL+"/results"); r.StatusCode != http.StatusOK {
		t.Errorf("/results past the viewer limit: %s", r.Status)
	}
	cancel1()
	for h.Viewers() != 1 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if third, res := stream(ctx, t, srv.URL); res.StatusCode != http.StatusOK {
		t.Errorf("after a viewer left: got %s", res.Status)
	} else if _, ok := <-third; !ok {
		t.Error("the new stream ended")
	}
}

// TestStalledViewerDropped opens a viewer that never reads: it must be
// disconnected within the viewer timeout once its buffers are full, while
// another viewer goes on getting every change.
func TestStalledViewerDropped(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	h := New(e.results, Options{Interval: 5 * time.Millisecond, ViewerTimeout: 200 * time.Millisecond})
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(stalled, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	live, _ := stream(ctx, t, srv.URL)

	var got int
	for h.Dropped() == 0 {
		e.advance(10)
		select {
		case _, ok := <-live:
			if !ok {
				t.Fatal("the live viewer's stream ended")
			}
			got++
		case <-ctx.Done():
			t.Fatalf("the stalled viewer was not dropped; the live one got %d events", got)
		}
	}
	// The live viewer still follows.
	want := e.advance(1000).Counted
	for {
		data, ok := <-live
		if !ok {
			t.Fatal("the live viewer's stream ended after the drop")
		}
		if strings.Contains(data, `"counted":`+strconv.FormatInt(want, 10)+`,`) {
			break
		}
	}
	if h.Viewers() != 1 {
		t.Errorf("viewers %d after the drop, want 1", h.Viewers())
	}
	t.Logf("dropped the stalled viewer after the live one got %d events", got)
}

// TestEventsGzip reads a gzip event stream with Go's gzip reader, which
// checks the trailer's CRC-32 and length once Close ends the stream: the
// pieces compressed once for all viewers must make one valid stream.
func TestEventsGzip(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(100)
	h := New(e.results, Options{Interval: 5 * time.Millisecond, KeepAlive: 20 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	req, err := http.NewRequest("GET", srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 5 {
			e.advance(100)
			time.Sleep(30 * time.Millisecond)
		}
	}()
	// Read until the last count and a keep-alive after it (the stream is
	// idle then), bounded: a stuck stream is closed under the reader.
	stuck := time.AfterFunc(20*time.Second, func() { res.Body.Close() })
	defer stuck.Stop()
	br := bufio.NewReader(zr)
	var text strings.Builder
	for last := -1; last < 0 || !strings.Contains(text.String()[last:], ": keep-alive\n"); {
		line, err := br.ReadString('\n')
		text.WriteString(line)
		if err != nil {
			t.Fatalf("gzip stream: %v after %q", err, text.String())
		}
		if last < 0 && strings.Contains(line, `"counted":600,`) {
			last = text.Len()
		}
	}
	// The end of the stream must be valid gzip too: trailer and checksum.
	h.Close()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("gzip stream's end: %v", err)
	}
	got := text.String() + string(rest)
	if n := strings.Count(got, "\ndata: {"); n < 2 || !strings.HasPrefix(got, "retry: 2000\n\nid: 1\n") {
		t.Errorf("%d events; the stream begins %q; want the retry and the first frame", n, got[:min(len(got), 40)])
	}
}

// TestEventsHTTP10 follows /events as an HTTP/1.0 client, which knows no
// chunks: the stream is the body until the server closes the connection.
func TestEventsHTTP10(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
	e.advance(100)
	h := New(e.results, Options{Interval: 5 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /events HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || len(res.TransferEncoding) != 0 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, transfer encoding %v, type %q", res.StatusCode, res.TransferEncoding, res.Header.Get("Content-Type"))
	}
	first, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || first != "retry: 2000\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	h.Close()
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatalf("the stream did not end with the connection: %v", err)
	}
}

// TestEventsTLS follows /events over TLS, as HTTP/1.1 (the connection is
// taken over from net/http) and as HTTP/2 (written through it): the same
// stream, its first event and a later count.
func TestEventsTLS(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			e := newElection(t, votegen.Config{Seed: 1, Scale: 0.0001})
			e.advance(100)
			h := New(e.results, Options{Interval: 5 * time.Millisecond})
			t.Cleanup(h.Close)
			srv := httptest.NewUnstartedServer(h)
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if want := map[bool]int{false: 1, true: 2}[h2]; res.ProtoMajor != want {
				t.Fatalf("protocol %s, want HTTP/%d", res.Proto, want)
			}
			want := `"counted":` + strconv.FormatInt(e.advance(100).Counted, 10) + `,`
			br := bufio.NewReader(res.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("stream ended before %s: %v", want, err)
				}
				if strings.Contains(line, want) {
					return
				}
			}
		})
	}
}
