// Command counter is a consumer group that counts the votes exactly: each
// replica counts the partitions it owns and checkpoints totals with offsets.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/votestream/votestream/pkg/memlimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The soft memory limit changes the whole process: set here, not in
	// run, so tests that call run keep their own.
	memlimit.Apply(os.Environ())
	if err := run(ctx, os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}
