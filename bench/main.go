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
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/votestream/votestream/internal/rig"
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
		switch args[0] {
		case "peers":
			cfg, err := parsePeersConfig(args[1:], stderr)
			if err != nil {
				return err
			}
			return runPeers(ctx, cfg, stdout, stderr)
		case "stand-in":
			return serveStandIn(ctx, args[1:], stdout)
		case "naive-produce", "naive-count", "raw-read":
			f, err := parseWorker(args[0], args[1:])
			if err != nil {
				return err
			}
			if f.cpuProfile != "" {
				pf, err := os.Create(f.cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			switch args[0] {
			case "naive-produce":
				return naiveProduce(ctx, f, stdout)
			case "naive-count":
				return naiveCount(ctx, f, stdout)
			default:
				return readAll(ctx, f, stdout, nil)
			}
		}
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	return orchestrate(ctx, cfg, stdout, stderr)
}

// startProc runs bin measured: its peak RSS and CPU.
func startProc(name, bin string, args, env []string) (*rig.Process, error) {
	return rig.Start(name, rig.Command(bin, args, env...), rig.Options{Measure: true})
}

// startTree runs bin measured with its descendants, in a process group of
// its own so that KillTree ends them all.
func startTree(name, bin string, args, env []string) (*rig.Process, error) {
	return rig.Start(name, rig.Command(bin, args, env...), rig.Options{Measure: true, Tree: true})
}

// finished explains a process's exit error with the end of its output.
func finished(p *rig.Process, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %v\n%s", p.Name, err, rig.Tail(p.Output(), 30))
}
