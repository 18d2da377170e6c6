package main

import (
	"context"
	"math"
	"net/http"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/results/web"
)

// mountElection serves the live page, /results and /events from the view
// beside /metrics, /healthz and /readyz (more specific routes, so kept),
// with at most maxViewers event streams (none if 0: the page polls), and
// exports how many are open, refused and dropped. The returned handler
// must be closed before the server shuts down, to end the event streams
// that would hold it up.
func mountElection(srv *httpserver.Server, reg prometheus.Registerer, view *election, maxViewers int) *web.Handler {
	bound := maxViewers
	if bound == 0 {
		bound = web.NoEvents // web's 0 is no bound
	}
	h := web.New(view.results, web.Options{MaxViewers: bound})
	name := func(n string) string { return prometheus.BuildFQName(httpserver.Namespace, "http", n) }
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("requests_total"),
		Help: "Requests for the live page, its assets, /results and /events that reached this replica: a cache in front answers the rest."},
		[]string{"path"})
	srv.Handle("/", countRequests(h, requests))
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name("viewers"),
			Help: "Open event streams of the live page (/events)."},
			func() float64 { return float64(h.Viewers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name("viewers_refused_total"),
			Help: "Event streams refused with 503 past HTTP_MAX_VIEWERS."},
			func() float64 { return float64(h.Refused()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name("viewers_dropped_total"),
			Help: "Viewers disconnected for not taking an event within the viewer timeout."},
			func() float64 { return float64(h.Dropped()) }),
		requests,
	)
	return h
}

// countRequests counts the requests h serves by path, passing the
// ResponseWriter through untouched: /events hijacks it.
func countRequests(h http.Handler, vec *prometheus.CounterVec) http.Handler {
	results, events := vec.WithLabelValues("/results"), vec.WithLabelValues("/events")
	page, assets, other := vec.WithLabelValues("/"), vec.WithLabelValues("/assets/"), vec.WithLabelValues("other")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/results":
			results.Inc()
		case p == "/events":
			events.Inc()
		case p == "/":
			page.Inc()
		case strings.HasPrefix(p, "/assets/"):
			assets.Inc()
		default:
			other.Inc()
		}
		h.ServeHTTP(w, r)
	})
}

// viewerMemory is the soft memory limit each open viewer adds: about six
// times what one holds live (some 600 bytes of heap and no goroutine, see
// web's fanout), the rest being room for the GC. Without it, thousands of
// viewers would bring the heap nearer the limit and the GC would run more
// often, taking CPU the count needs; with much more, the heap would spread
// over fresh pages that each cost a fault to touch.
const viewerMemory = 4 << 10

// burstHeadroom is how far above the live heap the limit stays. When
// thousands of viewers connect at once on a busy machine, their handlers
// wait for CPU holding net/http's buffers and a stack each: measured with
// 10,000 connecting in two seconds, the live heap rose to 60 to 78 MB,
// past the viewers' budget, and the GC ran back to back, taking 30% of
// the CPU the count and the handlers needed. The alone count runs with
// about 24 MiB between its live heap and the limit; stacks take a few more.
const burstHeadroom = 32 << 20

// viewerLimit is the soft memory limit for viewers open viewers over base,
// with live bytes of live heap: viewerMemory per viewer, and never less
// than burstHeadroom above the live heap.
func viewerLimit(base, viewers, live int64) int64 {
	return max(base+viewers*viewerMemory, live+burstHeadroom)
}

// budgetViewers raises the soft memory limit base as viewerLimit says,
// checking every 200ms, until ctx ends; then it restores base.
func budgetViewers(ctx context.Context, h *web.Handler, base int64) {
	if base == math.MaxInt64 {
		<-ctx.Done() // no limit in force (GOMEMLIMIT=off, or a test's process): nothing to raise
		return
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	live := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := base
	for {
		select {
		case <-ctx.Done():
			debug.SetMemoryLimit(base)
			return
		case <-t.C:
		}
		rtmetrics.Read(live)
		var n int64
		if live[0].Value.Kind() == rtmetrics.KindUint64 {
			n = int64(live[0].Value.Uint64())
		}
		if want := viewerLimit(base, h.Viewers(), n); want != set {
			debug.SetMemoryLimit(want)
			set = want
		}
	}
}
