// Package web serves the election-night page: a US map coloured by who
// leads or has won each state, the electoral bar toward 270, the popular
// vote and a table per state, kept live by server-sent events. Every asset
// is embedded; the page loads nothing from elsewhere.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/votestream/votestream/pkg/results"
)

//go:embed assets
var assets embed.FS

// Options tune a Handler; the zero value is ready to use.
type Options struct {
	// Interval is how often an event stream looks for new results: 1s if
	// zero.
	Interval time.Duration
	// KeepAlive is how long an event stream may stay silent before it sends
	// a comment, so dead clients are noticed: 15s if zero.
	KeepAlive time.Duration
	// Now is the clock for results' age: time.Now if nil.
	Now func() time.Time
}

// Handler serves the page at /, its assets under /assets/, the results as
// JSON at /results and as server-sent events at /events.
type Handler struct {
	source func() results.Results
	opt    Options
	mux    *http.ServeMux

	done      chan struct{}
	closeOnce sync.Once
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler showing what source returns. source is called for
// every request and by every open event stream once per Interval, from many
// goroutines: it must be safe for concurrent use and cheap (return a
// snapshot, do not recount). Before anything is counted it should return
// results.Compute of an empty tally rather than a zero Results.
func New(source func() results.Results, opt Options) *Handler {
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.KeepAlive <= 0 {
		opt.KeepAlive = 15 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	h := &Handler{source: source, opt: opt, mux: http.NewServeMux(), done: make(chan struct{})}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	h.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /results", h.serveResults)
	h.mux.HandleFunc("GET /events", h.serveEvents)
	return h
}

// ServeHTTP routes a request to the page, its assets or the results.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends the open event streams, which otherwise never go idle and would
// hold http.Server.Shutdown until its deadline; pass it to
// http.Server.RegisterOnShutdown. Streams asked for after Close end at once.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.done) }) }

// snapshot returns the results with their age filled.
func (h *Handler) snapshot() results.Results {
	r := h.source()
	if !r.AsOf.IsZero() {
		r.AgeSeconds = max(h.opt.Now().Sub(r.AsOf).Seconds(), 0)
	}
	return r
}

func (h *Handler) serveResults(w http.ResponseWriter, r *http.Request) {
	res := h.snapshot()
	b, err := json.Marshal(&res)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode results: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// serveEvents sends the results at once, then again whenever they change
// (their age aside), until the client goes or Close is called.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	send := func(format string, args ...any) error {
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	// A stream outlives any server WriteTimeout meant for short replies.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx would hold events back
	if err := send("retry: 2000\n\n"); err != nil {
		return
	}
	tick := time.NewTicker(h.opt.Interval)
	defer tick.Stop()
	var last []byte
	lastSent := time.Now()
	for {
		res := h.snapshot()
		age := res.AgeSeconds
		res.AgeSeconds = 0
		key, err := json.Marshal(&res)
		if err != nil {
			return
		}
		switch {
		case !bytes.Equal(key, last):
			res.AgeSeconds = age
			b, err := json.Marshal(&res)
			if err != nil {
				return
			}
			if err := send("data: %s\n\n", b); err != nil {
				return
			}
			last, lastSent = key, time.Now()
		case time.Since(lastSent) >= h.opt.KeepAlive:
			if err := send(": keep-alive\n\n"); err != nil {
				return
			}
			lastSent = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-tick.C:
		}
	}
}
