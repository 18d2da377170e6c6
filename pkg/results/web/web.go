// Package web serves the election-night page: a US map coloured by who
// leads or has won each state, the electoral bar toward 270, the popular
// vote and a table per state, kept live by server-sent events. Every asset
// is embedded; the page loads nothing from elsewhere.
package web

import (
	"embed"
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
	// a keep-alive, so dead clients are noticed and live ones learn the
	// results' age (a comment, then an "age" event): 15s if zero. Streams are
	// looked at once per Interval, so it is at least that.
	KeepAlive time.Duration
	// Now is the clock for results' age, which is computed when they are
	// served: time.Now if nil.
	Now func() time.Time
	// MaxViewers bounds the open event streams; past it /events answers
	// 503 with Retry-After, and the page polls /results. No bound if
	// zero; NoEvents (any negative) refuses every stream.
	MaxViewers int
	// RetryAfter is what a refused viewer is told to wait: 30s if zero.
	RetryAfter time.Duration
	// ViewerTimeout is how long a viewer may take to accept one event (or
	// keep-alive) before it is disconnected: 10s if zero.
	ViewerTimeout time.Duration
}

// NoEvents as Options.MaxViewers serves no event stream at all: /events
// always answers 503, and the page polls /results.
const NoEvents = -1

// Handler serves the page at /, its assets under /assets/, the results as
// JSON at /results and as server-sent events at /events. It encodes the
// results once per change, at most once per Interval, and sends the same
// bytes to every request and viewer, with the results' age as of the
// moment put in (see edition).
type Handler struct {
	source func() results.Results
	opt    Options
	mux    *http.ServeMux
	hub    hub
	fan    *fanout

	done      chan struct{}
	closeOnce sync.Once
}

var _ http.Handler = (*Handler)(nil)

// New returns a handler showing what source returns. source is called now
// and then once per Interval, by one goroutine the handler runs until
// Close: it must be safe for concurrent use with whatever updates it, and
// cheap (return a snapshot, do not recount). Before anything is counted it
// should return results.Compute of an empty tally rather than a zero
// Results.
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
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 30 * time.Second
	}
	if opt.ViewerTimeout <= 0 {
		opt.ViewerTimeout = 10 * time.Second
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
	h.hub.plain, h.hub.gz, h.hub.now = newPlainPieces(), newGzipPieces(), opt.Now
	h.fan = newFanout(&h.hub, opt.ViewerTimeout, opt.KeepAlive)
	h.refresh()
	go h.publishLoop()
	return h
}

// ServeHTTP routes a request to the page, its assets or the results.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Close ends the open event streams, which otherwise never go idle and would
// hold http.Server.Shutdown until its deadline, and stops the updates.
// Streams asked for after Close end at once.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.done)
		h.fan.close()
	})
}

// Viewers is the number of open event streams.
func (h *Handler) Viewers() int64 { return h.hub.viewers.Load() }

// Refused is the number of event streams refused past MaxViewers.
func (h *Handler) Refused() int64 { return h.hub.refused.Load() }

// Dropped is the number of viewers disconnected for not taking an event
// within ViewerTimeout.
func (h *Handler) Dropped() int64 { return h.hub.dropped.Load() }
