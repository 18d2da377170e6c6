package nemesis

import (
	"slices"
	"testing"
	"time"
)

func cfg(seed uint64, d time.Duration) Config {
	return Config{Seed: seed, Duration: d, Brokers: 3, Counters: Names(3)}
}

// TestDrawSameSeed: a seed gives one schedule, another seed another.
func TestDrawSameSeed(t *testing.T) {
	a, b := Draw(cfg(7, 2*time.Minute)), Draw(cfg(7, 2*time.Minute))
	if a.String() != b.String() {
		t.Fatalf("seed 7 drew two schedules:\n%s\n%s", a, b)
	}
	if c := Draw(cfg(8, 2*time.Minute)); c.String() == a.String() {
		t.Errorf("seeds 7 and 8 drew the same schedule:\n%s", a)
	}
	t.Log(a)
}

// TestDrawRules checks, over many seeds, what the executor relies on: every
// fault starts and heals within the duration; broker faults never overlap
// (at most one broker down, but for TwoBrokersDown); producer faults never
// overlap; a counter has one fault at a time and only while it runs; the
// counters stay within 1..5; and every kind is drawn by some seed.
func TestDrawRules(t *testing.T) {
	seen := map[Kind]int{}
	for seed := range uint64(300) {
		for _, d := range []time.Duration{2 * time.Minute, 10 * time.Minute} {
			s := Draw(cfg(seed, d))
			checkRules(t, s)
			for k, n := range s.Count() {
				seen[k] += n
			}
		}
	}
	for k := range NumKinds {
		if seen[k] == 0 {
			t.Errorf("no seed drew a %s", k)
		}
	}
	t.Logf("faults drawn per kind over 600 schedules: %v", seen)
}

func checkRules(t *testing.T, s Schedule) {
	t.Helper()
	var brokersFree, producerFree time.Duration
	busy := map[string]time.Duration{}
	fleet := slices.Clone(s.Counters)
	for i, f := range s.Faults {
		if f.At < 0 || f.At+f.For > s.Duration || (i > 0 && f.At < s.Faults[i-1].At) {
			t.Fatalf("seed %d: fault %s outside %s or out of order", s.Seed, f, s.Duration)
		}
		switch {
		case f.Kind.Broker():
			if f.Kind == RollingRestart && s.Duration < RollingMin {
				t.Fatalf("seed %d: %s in a %s schedule", s.Seed, f, s.Duration)
			}
			if f.At < brokersFree {
				t.Fatalf("seed %d: %s starts while the brokers are still busy until %s", s.Seed, f, brokersFree)
			}
			brokersFree = f.At + f.For
			if want := map[Kind]int{TwoBrokersDown: 2, RollingRestart: 0}; len(f.Brokers) != func() int {
				if n, ok := want[f.Kind]; ok {
					return n
				}
				return 1
			}() {
				t.Fatalf("seed %d: %s has brokers %v", s.Seed, f, f.Brokers)
			}
		case f.Kind.Producer():
			if f.At < producerFree {
				t.Fatalf("seed %d: %s overlaps the producer's last fault", s.Seed, f)
			}
			producerFree = f.At + f.For
		case f.Kind == Scale:
			for _, c := range f.Stopped {
				if busy[c] > f.At || !slices.Contains(fleet, c) {
					t.Fatalf("seed %d: %s stops %s, which is under a fault or not running", s.Seed, f, c)
				}
				fleet = slices.DeleteFunc(fleet, func(n string) bool { return n == c })
			}
			for _, c := range f.Started {
				if slices.Contains(fleet, c) {
					t.Fatalf("seed %d: %s starts %s, which runs", s.Seed, f, c)
				}
				fleet = append(fleet, c)
			}
			if len(fleet) != f.Scale || f.Scale < 1 || f.Scale > 5 {
				t.Fatalf("seed %d: %s leaves %v", s.Seed, f, fleet)
			}
		default:
			if len(f.Counters) < 1 || len(f.Counters) > 2 {
				t.Fatalf("seed %d: %s has counters %v", s.Seed, f, f.Counters)
			}
			for _, c := range f.Counters {
				if busy[c] > f.At || !slices.Contains(fleet, c) {
					t.Fatalf("seed %d: %s hits %s, which is under a fault or not running", s.Seed, f, c)
				}
				busy[c] = f.At + f.For
			}
		}
	}
}
