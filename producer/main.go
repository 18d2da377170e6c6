// Command producer generates the seeded election and publishes its votes to
// Kafka in batches, also dropping each batch as a JSON file like the seed.
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
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}
