package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/logging"
)

// run serves the broker until ctx ends, then closes it cleanly: kfake writes
// what it still holds in memory to the data dir on Close.
func run(ctx context.Context, environ []string, stdout, stderr io.Writer) error {
	var cfg config.Broker
	if err := config.Parse(&cfg, environ); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(cfg.Log, stderr).With("component", "broker")

	_, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("config: BROKER_ADDR: %q is not host:port", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return fmt.Errorf("config: BROKER_ADDR: bad port %q", portStr)
	}
	// Bind first so a taken port is reported at once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (BROKER_ADDR): %w", cfg.Addr, err)
	}
	cluster, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return ln, nil }),
		kfake.DataDir(cfg.DataDir),
		kfake.ClusterID("votestream-local"),
		kfake.GroupMinSessionTimeout(1e9), // 1s, so tests can use short sessions
	)
	if err != nil {
		ln.Close()
		return fmt.Errorf("start broker (data in %s): %w", cfg.DataDir, err)
	}
	addrs := cluster.ListenAddrs()
	log.Info("broker ready", "addr", addrs, "data_dir", cfg.DataDir)
	fmt.Fprintf(stdout, "broker listening on %s\n", addrs[0])

	var watch sync.WaitGroup
	watch.Go(func() { evictGhosts(ctx, cluster, addrs[0], time.Second, log) })
	<-ctx.Done()
	watch.Wait()
	log.Info("broker stopping: saving data", "data_dir", cfg.DataDir)
	cluster.Close()
	log.Info("broker stopped")
	return nil
}
