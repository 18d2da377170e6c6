// Package httpserver is the services' HTTP server: /metrics (from a private
// registry, under Namespace), /healthz and /readyz, and the routes a
// service adds (the counter's live page, /results and /events). Serve is
// one of the service's actors: its failure ends the service.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every votestream metric.
const Namespace = "votestream"

// NewRegistry returns a private registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server is the HTTP side of a service. Its listener is bound by Listen, so
// a taken port fails at start, before any Kafka work.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	mux   *http.ServeMux
	ready atomic.Bool
	// check, if set, is asked on every /readyz: an error makes it 503,
	// saying why.
	check atomic.Pointer[func() error]
	log   *slog.Logger

	webConfig string // HTTP_WEB_CONFIG_FILE, "" for plain HTTP
}

// Listen checks webConfigFile (HTTP_WEB_CONFIG_FILE: TLS and basic auth,
// "" for neither), binds addr and routes /metrics (from reg), /healthz and
// /readyz.
func Listen(addr, webConfigFile string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	if err := checkWebConfig(webConfigFile); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (HTTP_ADDR): %w", addr, err)
	}
	s := &Server{ln: boundedListener{ln}, mux: http.NewServeMux(), log: log, webConfig: webConfigFile}
	// Each scrape gathers afresh. Coalesced gathers (promhttp's
	// CoalesceGather) hand a scrape the snapshot of an earlier one still
	// being written to a slow client: a counter showed partitions it had
	// let go of (TestNemesisSeed4MetricsFresh).
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if check := s.check.Load(); check != nil {
			if err := (*check)(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	s.srv = newHTTPServer(s.mux, log)
	return s, nil
}

// Addr is the bound address, useful when HTTP_ADDR asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handle adds a route, e.g. the counter's results API.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SetReadyCheck makes /readyz also ask check, which names what is wrong
// (a partition stuck) while the service is otherwise ready.
func (s *Server) SetReadyCheck(check func() error) { s.check.Store(&check) }

// SetReady flips /readyz.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close closes the listener at once, without a graceful shutdown: Serve
// then returns the listener's error, as when the server fails by itself.
func (s *Server) Close() error { return s.ln.Close() }

// Serve serves until ctx ends, then shuts down gracefully within 5s. It is
// one of a service's actors: an error (the listener failed) must end the
// service, which would otherwise run without /metrics or /readyz.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("serving metrics", "addr", s.Addr())
	errc := make(chan error, 1)
	go func() { errc <- s.serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("HTTP server on %s failed: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	s.log.Info("http server stopped")
	return err
}
