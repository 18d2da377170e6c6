// Package memlimit sets the services' soft memory limit. It changes the
// whole process, so each service's main applies it, not run: tests that
// call run in their own process keep the test binary's limit.
package memlimit

import (
	"runtime/debug"
	"strings"
)

// Default is the soft memory limit the producer and the counter run with
// when GOMEMLIMIT is not set. Their live heap is a few tens of MiB whatever
// the election's size (kafka-go's fetch and produce buffers for every
// partition at once); without a limit the GC lets the heap reach twice the
// peak live heap, so a burst of fetches shows as RSS.
const Default = 40 << 20

// Apply sets the runtime's soft memory limit to Default unless environ
// sets GOMEMLIMIT, which the runtime has then already applied. Under the
// default limit it also turns the proportional GC off (GOGC=off), unless
// environ sets GOGC: the GC then runs when the heap nears the limit, not
// each time it doubles a live heap of a few MiB. The counter allocates
// about 400 MB/s in kafka-go's fetch decoding: with GOGC=100 it collected
// every 20 ms, now every 50 ms, and a count costs about a tenth less CPU
// per vote. It returns the limit in force.
func Apply(environ []string) int64 {
	gogc := false
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOMEMLIMIT="); ok && v != "" {
			return Current()
		}
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok && v != "" {
			gogc = true
		}
	}
	debug.SetMemoryLimit(Default)
	if !gogc {
		debug.SetGCPercent(-1)
	}
	return Default
}

// Current is the soft memory limit in force (math.MaxInt64 for none).
func Current() int64 { return debug.SetMemoryLimit(-1) }
