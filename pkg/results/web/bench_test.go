package web

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/votegen"
)

// BenchmarkPass is one change sent to the fanout's viewers: the results
// encoded, then a pass writing them to every viewer (who read on).
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			e := newElection(b, votegen.Config{Seed: 1, Scale: 0.01})
			h := New(e.results, Options{Interval: time.Hour})
			b.Cleanup(h.Close)
			srv := httptest.NewServer(h)
			b.Cleanup(srv.Close)
			for range n {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { conn.Close() })
				if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					b.Fatal(err)
				}
				go io.Copy(io.Discard, conn)
			}
			for h.Viewers() < int64(n) {
				time.Sleep(time.Millisecond)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.advance(1)
				h.refresh()
				h.fan.pass(time.Now())
			}
		})
	}
}

// BenchmarkIdlePass is a pass with nothing new: what every viewer costs
// each Interval while the results do not change.
func BenchmarkIdlePass(b *testing.B) {
	e := newElection(b, votegen.Config{Seed: 1, Scale: 0.01})
	h := New(e.results, Options{Interval: time.Hour})
	b.Cleanup(h.Close)
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	const n = 1000
	for range n {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
		go io.Copy(io.Discard, conn)
	}
	for h.Viewers() < n {
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.refresh()
		h.fan.pass(time.Now())
	}
}

// BenchmarkResults is one /results request, plain and gzipped.
func BenchmarkResults(b *testing.B) {
	e := newElection(b, votegen.Config{Seed: 1, Scale: 0.01})
	e.advance(10000)
	h := New(e.results, Options{Interval: time.Hour})
	b.Cleanup(h.Close)
	for _, enc := range []string{"", "gzip"} {
		b.Run("encoding="+enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/results", nil)
			req.Header.Set("Accept-Encoding", enc)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
			}
		})
	}
}
