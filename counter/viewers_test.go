package main

import "testing"

// TestViewerLimit: open viewers raise the limit by their budget, and a
// live heap near it (handlers of a burst of connections waiting for CPU)
// keeps the limit burstHeadroom above it, so the GC does not run back to
// back.
func TestViewerLimit(t *testing.T) {
	const base = 40 << 20
	for _, tc := range []struct {
		name          string
		viewers, live int64
		want          int64
	}{
		{"no viewers, small heap", 0, 6 << 20, base},
		{"10,000 viewers, steady", 10000, 18 << 20, base + 10000*viewerMemory},
		{"a burst", 5000, 70 << 20, 70<<20 + burstHeadroom},
	} {
		if got := viewerLimit(base, tc.viewers, tc.live); got != tc.want {
			t.Errorf("%s: viewerLimit(%d, %d, %d) = %d, want %d", tc.name, base, tc.viewers, tc.live, got, tc.want)
		}
	}
}
