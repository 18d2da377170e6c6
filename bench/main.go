// Command bench measures votestream against its ceiling and naive
// baselines in one run, on one local broker: the raw consume-and-discard
// rate of a topic, a naive producer and counter (uuid + encoding/json +
// kafka-go), the real producer and counter binaries, the whole pipeline end
// to end, the latency from a vote's timestamp to /metrics, and (-viewers N)
// the count again while N live-page viewers watch /events and /results is
// polled. It prints a Markdown table with rates, ratios, peak RSS (VmHWM)
// and wall times.
//
//	go run ./bench -bin bin             # what make bench runs
//	go run ./bench naive-produce -h      # a worker, run by the bench itself
//	go run ./bench stand-in -h           # the viewers' stand-in server, likewise
//	go run ./bench peers -bin bin       # make bench-peers: Spark and Kafka Streams beside the counter
//
// Each concern is a package under internal/: bed (the broker, binaries and
// shared steps), pipeline (the main table), viewers (the viewers runs and
// the stand-in), peers, scale (-scale-run) and workers (the baselines).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/votestream/votestream/bench/internal/peers"
	"github.com/votestream/votestream/bench/internal/pipeline"
	"github.com/votestream/votestream/bench/internal/viewers"
	"github.com/votestream/votestream/bench/internal/workers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch {
		case args[0] == "peers":
			cfg, err := peers.ParseConfig(args[1:], stderr)
			if err != nil {
				return err
			}
			return peers.Run(ctx, cfg, stdout, stderr)
		case args[0] == "stand-in":
			return viewers.ServeStandIn(ctx, args[1:], stdout)
		case slices.Contains(workers.Names, args[0]):
			return workers.Run(ctx, args[0], args[1:], stdout)
		}
	}
	cfg, err := pipeline.ParseConfig(args, stderr)
	if err != nil {
		return err
	}
	return pipeline.Run(ctx, cfg, stdout, stderr)
}
