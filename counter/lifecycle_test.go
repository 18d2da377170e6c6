package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/httpserver"
)

// TestHTTPFailureEndsCounter closes a counting replica's HTTP listener
// under it: a counter without /metrics and /readyz must not run on. Run
// returns the server's error (main exits 1 with it), and only after the
// final checkpoint, so no vote counted is lost with it.
func TestHTTPFailureEndsCounter(t *testing.T) {
	servers := make(chan *httpserver.Server, 1)
	listen = func(addr, webConfig string, reg *prometheus.Registry, log *slog.Logger) (*httpserver.Server, error) {
		srv, err := httpserver.Listen(addr, webConfig, reg, log)
		if err == nil {
			servers <- srv
		}
		return srv, err
	}
	t.Cleanup(func() { listen = httpserver.Listen })

	e := newTestElection(t, 11, 2)
	c := startCounter(t, e.env, "a")
	srv := <-servers
	waitOwning(t, c.addr)
	e.publish(t)
	waitExact(t, &e.want, c.addr)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err == nil || !strings.Contains(err.Error(), "HTTP server on "+c.addr+" failed") {
			t.Fatalf("run returned %v, want the HTTP server's failure", err)
		}
		t.Logf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("the counter runs on 30s after its HTTP server failed:\n%s", c.out.String())
	}
	// Logged once the final checkpoint is written.
	if log := c.out.String(); !strings.Contains(log, `msg="partitions released"`) {
		t.Errorf("no final checkpoint before run returned:\n%s", log)
	}
}
