package viewers

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/votestream/votestream/bench/internal/bed"
	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/results"
	"github.com/votestream/votestream/pkg/vote"
	"github.com/votestream/votestream/pkg/votegen"
)

// standIn takes the viewers run's load in place of the counter with the
// least work a server can do, so that the bench can tell what the traffic
// itself costs this machine (the system calls on loopback, the client)
// from what votestream adds: once a second one write of the same piece to
// each viewer, from one goroutine; /results answered by net/http from a
// body made once, 304 to a matching If-None-Match. Its ETag changes once a
// second, as a count's results do, so that as many answers carry the body
// as the counter's. It runs as a process of its own (bench stand-in), as
// the counter does.
type standIn struct {
	srv   *http.Server
	addr  string
	piece []byte        // one gzip event as an HTTP/1.1 chunk
	body  []byte        // /results gzipped
	gen   atomic.Uint64 // the ETag's, one more each second

	mu      sync.Mutex
	viewers []net.Conn
	stop    chan struct{}
	done    sync.WaitGroup
}

// newStandIn serves on a free port of 127.0.0.1 results the size of the
// election's final ones.
func newStandIn(t vote.Tally) (*standIn, error) {
	body, err := json.Marshal(results.Compute(&t, [vote.NumStates]int64{}))
	if err != nil {
		return nil, err
	}
	event := append(append([]byte("id: 1\ndata: "), body...), "\n\n"...)
	var ev, gz bytes.Buffer
	fw, _ := flate.NewWriter(&ev, flate.BestCompression)
	fw.Write(event)
	fw.Flush()
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &standIn{addr: ln.Addr().String(), piece: chunk(ev.Bytes()), body: gz.Bytes(), stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /results", s.results)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.done.Go(func() { _ = s.srv.Serve(ln) })
	s.done.Go(s.publish)
	return s, nil
}

// ServeStandIn is the stand-in process: it serves the results of the
// election of args' seed and scale until ctx ends.
func ServeStandIn(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stand-in", flag.ContinueOnError)
	seed := fs.Uint64("seed", 20241105, "SEED of the election whose final results are served")
	scale := fs.Float64("scale", 0.02, "SCALE of that election")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := votegen.TrueTotals(votegen.Config{Seed: *seed, Scale: *scale})
	if err != nil {
		return err
	}
	s, err := newStandIn(t)
	if err != nil {
		return err
	}
	defer s.close()
	fmt.Fprintf(stdout, "stand-in serving addr=%s\n", s.addr)
	<-ctx.Done()
	return nil
}

var standInAddrRE = regexp.MustCompile(`stand-in serving addr=(\S+)`)

// startStandIn runs the stand-in process for the election at scale and
// returns it with its address.
func startStandIn(b *bed.Bed, scale float64) (*testbed.Process, string, error) {
	p, err := bed.StartProc("stand-in", b.Self, []string{"stand-in", "-seed", strconv.FormatUint(b.Cfg.Seed, 10), "-scale", strconv.FormatFloat(scale, 'g', -1, 64)}, nil)
	if err != nil {
		return nil, "", err
	}
	addr, err := p.WaitOutput(standInAddrRE, 30*time.Second)
	if err != nil {
		p.Kill()
		return nil, "", err
	}
	return p, addr, nil
}

func chunk(data []byte) []byte {
	return fmt.Appendf(nil, "%x\r\n%s\r\n", len(data), data)
}

func (s *standIn) results(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	etag := `"standin-` + strconv.FormatUint(s.gen.Load(), 10) + `"`
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.Write(s.body)
}

// events takes the connection over and hands it to publish, after the
// header, the gzip stream's start and the current event.
func (s *standIn) events(w http.ResponseWriter, _ *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	start := append(fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"+
		"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), chunk([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})...)
	if _, err := c.Write(append(start, s.piece...)); err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	s.viewers = append(s.viewers, c)
	s.mu.Unlock()
}

// publish writes the piece to every viewer and changes the ETag once a
// second until close; a viewer that cannot take the piece within a second
// is let go.
func (s *standIn) publish() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.gen.Add(1)
		s.mu.Lock()
		kept := s.viewers[:0]
		for _, c := range s.viewers {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(s.piece); err != nil {
				c.Close()
				continue
			}
			kept = append(kept, c)
		}
		s.viewers = kept
		s.mu.Unlock()
	}
}

func (s *standIn) close() {
	close(s.stop)
	_ = s.srv.Close()
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.viewers {
		c.Close()
	}
}
