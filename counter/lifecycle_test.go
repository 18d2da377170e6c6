package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/votegen"
)

// TestHTTPFailureEndsCounter closes a counting replica's HTTP listener
// under it: a counter without /metrics and /readyz must not run on. Run
// returns the server's error (main exits 1 with it), and only after the
// final checkpoint, so no vote counted is lost with it.
func TestHTTPFailureEndsCounter(t *testing.T) {
	const parts = 2
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	servers := make(chan *httpserver.Server, 1)
	listen = func(addr, webConfig string, reg *prometheus.Registry, log *slog.Logger) (*httpserver.Server, error) {
		srv, err := httpserver.Listen(addr, webConfig, reg, log)
		if err == nil {
			servers <- srv
		}
		return srv, err
	}
	t.Cleanup(func() { listen = httpserver.Listen })

	gen := votegen.Config{Seed: 11, Scale: 0.0001}
	want, err := votegen.TrueTotals(gen)
	if err != nil {
		t.Fatal(err)
	}
	brokers := cluster.ListenAddrs()[0]
	env := []string{"KAFKA_BROKERS=" + brokers, "KAFKA_TOPIC=votes", "KAFKA_CHECKPOINT_TOPIC=ckpt", "KAFKA_DLQ_TOPIC=dlq",
		fmt.Sprintf("KAFKA_PARTITIONS=%d", parts), "GROUP_ID=g", "HTTP_ADDR=127.0.0.1:0", "BATCH_MAX_WAIT=100ms",
		"GROUP_SESSION_TIMEOUT=2s", "GROUP_REBALANCE_TIMEOUT=4s"}
	c := startCounter(t, env, "a")
	srv := <-servers
	waitOwning(t, c.addr)
	publish(t, brokers, parts, gen, want.Total())
	waitExact(t, &want, c.addr)

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
