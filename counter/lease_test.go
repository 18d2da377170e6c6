package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/pkg/checkpoint"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
)

func TestLeaseTTL(t *testing.T) {
	for _, tc := range []struct{ session, rebalance, want time.Duration }{
		{10 * time.Second, 10 * time.Second, 8 * time.Second},
		{2 * time.Second, 4 * time.Second, 1600 * time.Millisecond},
		// A rebalance the member does not rejoin gives its partitions away
		// after the rebalance timeout, whatever the session.
		{10 * time.Second, 3 * time.Second, 2400 * time.Millisecond},
	} {
		if got := leaseTTL(tc.session, tc.rebalance); got != tc.want {
			t.Errorf("leaseTTL(%s, %s) = %s, want %s", tc.session, tc.rebalance, got, tc.want)
		}
	}
}

// TestLeaseRule: the lease runs from the send time of the last acknowledged
// heartbeat for ttl, an older acknowledgement never shortens it, and once
// ended it is never held again.
func TestLeaseRule(t *testing.T) {
	const ttl = time.Hour
	l := newLease(ttl)
	defer l.stop()
	sent := time.Now()
	if l.held(sent) {
		t.Fatal("held before any heartbeat was acknowledged")
	}
	l.renew(sent)
	if !l.held(sent.Add(ttl - time.Nanosecond)) {
		t.Error("not held just before send time + ttl")
	}
	if l.held(sent.Add(ttl)) {
		t.Error("held at send time + ttl")
	}
	l.renew(sent.Add(-time.Minute)) // a late answer to an older heartbeat
	if !l.held(sent.Add(ttl - time.Nanosecond)) {
		t.Error("an older acknowledgement shortened the lease")
	}
	gone := errors.New("member gone")
	l.end(gone)
	l.renew(time.Now())
	if l.held(time.Now()) {
		t.Error("held after end")
	}
	select {
	case <-l.lost:
	default:
		t.Error("lost not closed after end")
	}
	if err := l.reason(); !errors.Is(err, errLeaseLost) || !errors.Is(err, gone) {
		t.Errorf("reason = %v, want errLeaseLost wrapping %v", err, gone)
	}
	if _, _, err := l.bound(context.Background()); !errors.Is(err, errLeaseLost) {
		t.Errorf("bound after end: %v, want errLeaseLost", err)
	}
}

// TestLeaseRunsOut: a lease whose renewals stop ends by itself, and not
// before ttl after the last renewal's send time (a later one here, so a
// slow test cannot let the lease run out between renewals).
func TestLeaseRunsOut(t *testing.T) {
	const ttl = 100 * time.Millisecond
	l := newLease(ttl)
	start := time.Now()
	l.renew(start)
	last := start.Add(ttl / 2)
	l.renew(last)
	select {
	case <-l.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("lease did not run out within 10s of its last renewal")
	}
	if d := time.Since(last); d < ttl {
		t.Errorf("lease ended %s after its last renewal, before its ttl %s", d, ttl)
	}
	if l.held(time.Now()) {
		t.Error("held after running out")
	}
}

// TestLeaseNeverAcknowledged: without a first acknowledgement the lease
// ends after ttl.
func TestLeaseNeverAcknowledged(t *testing.T) {
	l := newLease(50 * time.Millisecond)
	select {
	case <-l.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("a lease never acknowledged did not end within 10s")
	}
}

// TestLeaseBound: a checkpoint write gets the lease's end as deadline.
func TestLeaseBound(t *testing.T) {
	l := newLease(time.Hour)
	defer l.stop()
	if _, _, err := l.bound(context.Background()); !errors.Is(err, errLeaseLost) {
		t.Errorf("bound before any heartbeat: %v, want errLeaseLost", err)
	}
	sent := time.Now()
	l.renew(sent)
	ctx, cancel, err := l.bound(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(sent.Add(time.Hour)) {
		t.Errorf("deadline %v (set %v), want %v", d, ok, sent.Add(time.Hour))
	}
}

// TestOwnedShownOnlyUnderLease: /metrics shows the owned partitions while
// the lease is held and none once it is not, whatever the states say.
func TestOwnedShownOnlyUnderLease(t *testing.T) {
	o := newOwned()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(o))
	st := &checkpoint.State{Partition: 3, Offset: 7}
	st.Tally[0][0][0] = 5
	l := newLease(time.Hour)
	defer l.stop()
	o.set(map[int]*checkpoint.State{3: st}, l)
	shown := func() (parts, votes float64) {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				switch f.GetName() {
				case "votestream_counter_partitions_owned":
					parts += m.GetGauge().GetValue()
				case "votestream_votes":
					votes += m.GetGauge().GetValue()
				}
			}
		}
		return parts, votes
	}
	for _, step := range []struct {
		what        string
		do          func()
		parts, vote float64
	}{
		{"before the first acknowledged heartbeat", func() {}, 0, 0},
		{"while held", func() { l.renew(time.Now()) }, 1, 5},
		{"after ending", func() { l.end(errors.New("cut off")) }, 0, 0},
	} {
		step.do()
		if p, v := shown(); p != step.parts || v != step.vote {
			t.Errorf("%s: shown %v partitions, %v votes; want %v, %v", step.what, p, v, step.parts, step.vote)
		}
		if tl, _ := o.totals(); float64(tl.Total()) != step.vote {
			t.Errorf("%s: totals %d, want %v", step.what, tl.Total(), step.vote)
		}
	}
}

// TestMicroBatchWritesNothingWithoutLease: without the lease a micro-batch
// writes no checkpoint (the store is nil: touching it would panic) and
// keeps what it took for a later try.
func TestMicroBatchWritesNothingWithoutLease(t *testing.T) {
	c := &counter{owned: newOwned(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p := &partition{id: 0, state: checkpoint.State{Offset: 10}, saved: 4, hwm: -1}
	p.stamps = []stampRun{{ms: 1, n: 6}}
	var pending atomic.Int64
	pending.Store(6)
	l := newLease(time.Hour)
	l.end(errors.New("cut off"))
	err := c.microBatch(context.Background(), nil, l, []*partition{p}, &pending, false)
	if !errors.Is(err, errLeaseLost) {
		t.Fatalf("micro-batch without lease: %v, want errLeaseLost", err)
	}
	if pending.Load() != 6 || len(p.stamps) != 1 || p.saved != 4 {
		t.Errorf("after the refused batch: pending %d, stamps %v, saved %d; want 6, one run, 4", pending.Load(), p.stamps, p.saved)
	}
}

// TestKeepLease runs the lease's heartbeats against a real group member on
// kfake: they renew it; a coordinator that stops answering lets it run out
// no later than ttl after the last heartbeat sent before the cut; one that
// says the member is gone ends it at once.
func TestKeepLease(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(kmsg.Request) (kmsg.Response, error, bool)
		want   error
	}{
		{"unanswered", func(kmsg.Request) (kmsg.Response, error, bool) {
			return nil, errors.New("cut off"), true // the connection drops
		}, errLeaseLost},
		{"member gone", func(req kmsg.Request) (kmsg.Response, error, bool) {
			resp := req.(*kmsg.HeartbeatRequest).ResponseKind().(*kmsg.HeartbeatResponse)
			resp.Version = req.GetVersion()
			resp.ErrorCode = int16(kafka.UnknownMemberId)
			return resp, nil, true
		}, kafka.UnknownMemberId},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.GroupMinSessionTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			c, gen := joinGroup(t, cluster)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, stop := c.startLease(ctx, gen)
			defer stop()
			for !l.held(time.Now()) {
				if ctx.Err() != nil || l.reason() != nil {
					t.Fatalf("lease never held: %v", l.reason())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cut := time.Now()
			cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
				cluster.KeepControl()
				return tc.answer(req)
			})
			select {
			case <-l.lost:
			case <-ctx.Done():
				t.Fatal("lease still held 30s after the coordinator stopped acknowledging")
			}
			if err := l.reason(); !errors.Is(err, tc.want) {
				t.Errorf("reason %v, want %v", err, tc.want)
			}
			l.mu.Lock()
			until := l.until
			l.mu.Unlock()
			if until.After(cut.Add(l.ttl)) {
				t.Errorf("renewed to %s after the cut, past cut + ttl", until.Sub(cut))
			}
		})
	}
}

// joinGroup makes a counter and a generation of a one-member group on
// cluster, with a 5s session: a 4s lease, which a slow host's first
// heartbeat still answers in time. The generation lasts until the test
// ends or the group rebalances.
func joinGroup(t *testing.T, cluster *kfake.Cluster) (*counter, *kafkaio.Generation) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Counter{GroupID: "g", SessionTimeout: 5 * time.Second, RebalanceTimeout: 5 * time.Second}
	cfg.Kafka = kafkaio.Config{Brokers: cluster.ListenAddrs(), DialTimeout: 5 * time.Second, ClientID: "test", Topic: "t"}
	client, err := kafkaio.New(cfg.Kafka, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	ctx, cancel := context.WithCancel(context.Background())
	gens := make(chan *kafkaio.Generation)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.Group(ctx, kafkaio.GroupConfig{ID: cfg.GroupID, Topic: "t", SessionTimeout: cfg.SessionTimeout, RebalanceTimeout: cfg.RebalanceTimeout},
			func(gctx context.Context, g *kafkaio.Generation) error {
				select {
				case gens <- g:
				case <-gctx.Done():
				}
				<-gctx.Done()
				return nil
			})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case gen := <-gens:
		return &counter{cfg: cfg, client: client, log: log}, gen
	case <-time.After(30 * time.Second):
		t.Fatal("no generation joined within 30s")
		return nil, nil
	}
}
