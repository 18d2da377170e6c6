package kafkaio

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestGroup runs a member of a real (kfake) group: each generation gets
// every partition; an error of a generation is logged and the member goes
// on to the next generation, which it joins only after the last returned;
// a Fatal error ends Group with it.
func TestGroup(t *testing.T) {
	c := testClient(t, kfake.SeedTopics(3, "t"), kfake.GroupMinSessionTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	stop := errors.New("stop here")
	var gens []*Generation
	rejoined := 0
	err := c.Group(ctx, GroupConfig{ID: "g", Topic: "t", SessionTimeout: 2 * time.Second, RebalanceTimeout: 2 * time.Second,
		Rejoining: func() { rejoined++ }},
		func(gctx context.Context, g *Generation) error {
			gens = append(gens, g)
			if err := g.Heartbeat(gctx); err != nil {
				t.Errorf("heartbeat of generation %d: %v", g.ID, err)
			}
			if len(gens) == 1 {
				return errors.New("a generation that failed")
			}
			return Fatal(stop)
		})
	if !errors.Is(err, stop) || !IsFatal(err) {
		t.Fatalf("Group = %v, want the fatal error", err)
	}
	if len(gens) != 2 || rejoined != 1 {
		t.Fatalf("%d generations, %d rejoins; want 2 generations in one group, then 1 rejoin", len(gens), rejoined)
	}
	for _, g := range gens {
		if len(g.Partitions) != 3 || g.Partitions[0] != 0 || g.Partitions[2] != 2 || g.MemberID == "" {
			t.Errorf("generation %d: partitions %v, member %q", g.ID, g.Partitions, g.MemberID)
		}
	}
}

// TestGroupSessionRefused: a session timeout under the broker's minimum is
// refused at every join, so Group ends at once with one fatal error naming
// GROUP_SESSION_TIMEOUT and the bounds, rather than rejoin for good.
func TestGroupSessionRefused(t *testing.T) {
	c := testClient(t, kfake.SeedTopics(1, "t"), kfake.GroupMinSessionTimeout(6*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rejoined := 0
	err := c.Group(ctx, GroupConfig{ID: "g", Topic: "t", SessionTimeout: 2 * time.Second, RebalanceTimeout: 2 * time.Second,
		Rejoining: func() { rejoined++ }},
		func(context.Context, *Generation) error {
			t.Error("a generation with a refused session timeout")
			return nil
		})
	if !IsFatal(err) || !errors.Is(err, kafka.InvalidSessionTimeout) || !strings.Contains(err.Error(), "GROUP_SESSION_TIMEOUT=2s: the broker refuses it") ||
		!strings.Contains(err.Error(), "group.min.session.timeout.ms") {
		t.Fatalf("Group = %v, want a fatal error naming GROUP_SESSION_TIMEOUT=2s and the bounds", err)
	}
	if ctx.Err() != nil || rejoined != 1 {
		t.Errorf("Group left %d times (context %v), want once, at once", rejoined, ctx.Err())
	}
	t.Log(err)
}

// TestRotate: each join afresh starts the coordinator lookup at the next
// broker, so a hung first broker is passed over on the next attempt.
func TestRotate(t *testing.T) {
	brokers := []string{"a:1", "b:2", "c:3"}
	for n, want := range [][]string{{"a:1", "b:2", "c:3"}, {"b:2", "c:3", "a:1"}, {"c:3", "a:1", "b:2"}, {"a:1", "b:2", "c:3"}} {
		if got := rotate(brokers, n); !slices.Equal(got, want) {
			t.Errorf("rotate(%v, %d) = %v, want %v", brokers, n, got, want)
		}
	}
	if !slices.Equal(brokers, []string{"a:1", "b:2", "c:3"}) {
		t.Errorf("rotate changed its input: %v", brokers)
	}
}

// TestJoinDeadline: the deadline grows with each join in a row that
// yielded no generation, up to four times the first, and is jittered so
// that members that missed together do not give up together.
func TestJoinDeadline(t *testing.T) {
	cfg := GroupConfig{SessionTimeout: 2 * time.Second, RebalanceTimeout: 4 * time.Second}
	base := 16 * time.Second
	for misses, lo := range []time.Duration{base, 2 * base, 4 * base, 4 * base, 4 * base} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := joinDeadline(cfg, misses)
			if d < lo || d > lo*3/2 {
				t.Fatalf("joinDeadline after %d misses = %s, want %s to %s", misses, d, lo, lo*3/2)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("joinDeadline after %d misses is always %v: not jittered", misses, seen)
		}
	}
}
