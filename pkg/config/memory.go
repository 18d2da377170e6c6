package config

import (
	"runtime/debug"
	"strings"
)

// DefaultMemoryLimit is the soft memory limit the producer and the counter
// run with when GOMEMLIMIT is not set. Their live heap is a few tens of MiB
// whatever the election's size (kafka-go's fetch and produce buffers for
// every partition at once); without a limit the GC lets the heap reach
// twice the peak live heap, so a burst of fetches shows as RSS. Near the
// limit the GC works harder, which cost about 3% CPU per vote in the bench.
const DefaultMemoryLimit = 40 << 20

// ApplyMemoryLimit sets the runtime's soft memory limit to
// DefaultMemoryLimit unless environ sets GOMEMLIMIT, which the runtime has
// then already applied. It returns the limit in force.
func ApplyMemoryLimit(environ []string) int64 {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOMEMLIMIT="); ok && v != "" {
			return debug.SetMemoryLimit(-1)
		}
	}
	debug.SetMemoryLimit(DefaultMemoryLimit)
	return DefaultMemoryLimit
}
