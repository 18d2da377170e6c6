package web

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

// TestTextSumAfter checks the CRC combination against crc32 of the
// concatenated texts.
func TestTextSumAfter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var all []byte
	var crc uint32
	for _, n := range []int{0, 1, 13, 255, 256, 4097, 16 << 10, 3, 0, 100_000} {
		text := make([]byte, n)
		for i := range text {
			text[i] = byte(rng.Uint32())
		}
		all = append(all, text...)
		crc = sumOf(text).after(crc)
		if want := crc32.ChecksumIEEE(all); crc != want {
			t.Fatalf("after %d bytes more (%d in all): CRC %08x, want %08x", n, len(all), crc, want)
		}
	}
}

// TestSlowViewerCatchesUp holds a viewer's reading until its socket is
// full, so that a goroutine takes over its writes, then reads on: it must
// get the events in order, the newest last, and the body's end.
func TestSlowViewerCatchesUp(t *testing.T) {
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.01})
	h := New(e.results, Options{Interval: 2 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	start := time.Now()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(64 << 10)
	if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for !anyBusy(h.fan) {
		if time.Now().After(deadline) {
			t.Fatal("the socket of a viewer that does not read never filled")
		}
		e.advance(1)
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("the socket filled in %v, at frame %d", time.Since(start).Round(time.Millisecond), h.hub.current().id)
	last := waitPublished(t, h, e.advance(1000).Counted, deadline)
	var got atomic.Uint64
	ended := make(chan error, 1)
	go func() { ended <- readIDs(conn, &got) }()
	waitFrame(t, "the viewer", &got, ended, last, deadline)
	h.Close()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("the stream: %v", err)
		}
	case <-time.After(time.Until(deadline)):
		t.Fatal("the stream did not end at Close")
	}
}

// waitPublished waits until the current frame shows counted votes, and
// returns its id.
func waitPublished(t *testing.T, h *Handler, counted int64, deadline time.Time) uint64 {
	t.Helper()
	for {
		if f := h.hub.current(); bytes.Contains(f.tail, []byte(`"counted":`+strconv.FormatInt(counted, 10)+`,`)) {
			return f.id
		}
		if time.Now().After(deadline) {
			t.Fatal("the last change was not published")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func anyBusy(fo *fanout) bool {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	for _, v := range fo.viewers {
		if v.busy {
			return true
		}
	}
	return false
}

// TestManyViewersCatchUp connects more viewers than a pass writes to under
// the lock at a time while the results change: every one must end with the
// newest frame, and Close must end every stream cleanly.
func TestManyViewersCatchUp(t *testing.T) {
	const n = 3*eachRun + 10
	e := newElection(t, votegen.Config{Seed: 1, Scale: 0.001})
	h := New(e.results, Options{Interval: 2 * time.Millisecond})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	type seen struct {
		last atomic.Uint64
		err  chan error
	}
	viewers := make([]*seen, n)
	for i := range viewers {
		if i%eachRun == 0 {
			e.advance(100) // a change while they join
		}
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		v := &seen{err: make(chan error, 1)}
		viewers[i] = v
		go func() { v.err <- readIDs(conn, &v.last) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	last := waitPublished(t, h, e.advance(1000).Counted, deadline)
	for i, v := range viewers {
		waitFrame(t, fmt.Sprintf("viewer %d of %d", i, n), &v.last, v.err, last, deadline)
	}
	h.Close()
	for i, v := range viewers {
		select {
		case err := <-v.err:
			if err != nil {
				t.Fatalf("viewer %d: %v", i, err)
			}
		case <-time.After(time.Until(deadline)):
			t.Fatalf("viewer %d's stream did not end at Close", i)
		}
	}
}

// waitFrame waits until a viewer following its stream with readIDs (into
// got, its result on ended) has frame want.
func waitFrame(t *testing.T, who string, got *atomic.Uint64, ended <-chan error, want uint64, deadline time.Time) {
	t.Helper()
	for got.Load() != want {
		select {
		case err := <-ended:
			t.Fatalf("%s: the stream ended at frame %d of %d: %v", who, got.Load(), want, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is at frame %d, the newest is %d", who, got.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// readIDs follows an event stream, storing each event's id in last, until
// the body ends (nil) or fails.
func readIDs(conn net.Conn, last *atomic.Uint64) error {
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("/events: %s", res.Status)
	}
	body := bufio.NewReader(res.Body) // chunks undone
	for {
		line, err := body.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil {
			return err
		}
		if id, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "id: "); ok {
			n, err := strconv.ParseUint(id, 10, 64)
			if err != nil || n <= last.Load() {
				return fmt.Errorf("event id %q after %d", id, last.Load())
			}
			last.Store(n)
		}
	}
}
