package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// stoppedGauges is the partition_reader_stopped series reg holds.
func stoppedGauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return out
}

// A stopped reader unreadies the replica and shows in the gauge until it
// reads again; an ended generation's readers neither.
func TestReadersReadiness(t *testing.T) {
	ready := false
	reg := prometheus.NewRegistry()
	r := newReaders(reg, func(b bool) { ready = b }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	gauge := func(p string) float64 { return stoppedGauges(t, reg)[p] }
	ctx, end := context.WithCancel(context.Background())
	r.join(true)
	if !ready {
		t.Fatal("not ready after join")
	}
	r.stop(ctx, 3, errors.New("offset out of range"))
	r.stop(ctx, 5, errors.New("cannot decode"))
	if ready || gauge("3") != 1 || gauge("5") != 1 {
		t.Fatalf("two readers stopped: ready %v, gauges %v %v; want not ready, 1 and 1", ready, gauge("3"), gauge("5"))
	}
	r.resume(3)
	if ready || gauge("3") != 0 {
		t.Fatalf("one of two resumed: ready %v, gauge %v; want not ready, 0", ready, gauge("3"))
	}
	r.resume(5)
	if !ready {
		t.Fatal("not ready after both resumed")
	}
	end()
	r.stop(ctx, 7, errors.New("late"))
	if n := len(stoppedGauges(t, reg)); !ready || n != 2 {
		t.Errorf("a reader of an ended generation stopped: ready %v, %d series", ready, n)
	}
	r.forget([]int{3, 5})
	if n := len(stoppedGauges(t, reg)); n != 0 {
		t.Errorf("%d series after the generation's partitions were forgotten, want 0", n)
	}
}
