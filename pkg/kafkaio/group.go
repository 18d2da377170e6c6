package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/pkg/backoff"
)

// GroupCoordinator returns the address of the broker coordinating group.
func (c *Client) GroupCoordinator(ctx context.Context, group string) (net.Addr, error) {
	fc, err := c.kc.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil {
		err = fc.Error
	}
	if err != nil {
		return nil, fmt.Errorf("find coordinator of group %s: %w", group, err)
	}
	return kafka.TCP(net.JoinHostPort(fc.Coordinator.Host, strconv.Itoa(fc.Coordinator.Port))), nil
}

// GroupHeartbeat sends one heartbeat for a member of a consumer group's
// generation to the group's coordinator (kafka-go would send it to any
// broker) and returns the coordinator's answer: nil means the member is in
// that generation and its session timer restarted when the coordinator read
// the request. kafka-go's ConsumerGroup heartbeats too, but says nothing
// about it; this one's outcome is the caller's to see.
func (c *Client) GroupHeartbeat(ctx context.Context, coordinator net.Addr, group string, generation int32, member string) error {
	res, err := c.kc.Heartbeat(ctx, &kafka.HeartbeatRequest{
		Addr: coordinator, GroupID: group, GenerationID: generation, MemberID: member,
	})
	if err == nil {
		err = heartbeatError(res)
	}
	if err != nil {
		return fmt.Errorf("heartbeat of group %s: %w", group, err)
	}
	return nil
}

// heartbeatError is a heartbeat response's error. kafka-go v0.4.51 decodes
// responses v1 and later with their two fields swapped (error code first;
// segmentio/kafka-go pull request 1371), so the error code arrives as the
// low 16 bits of the throttle time, in milliseconds, and Error is nil.
func heartbeatError(res *kafka.HeartbeatResponse) error {
	if res.Error != nil {
		return res.Error
	}
	if code := int16(uint32(res.Throttle.Milliseconds())); code != 0 {
		return kafka.Error(code)
	}
	return nil
}

// MemberGone reports whether a heartbeat's error means the coordinator no
// longer counts the member in its generation, so its partitions may
// already be someone else's.
func MemberGone(err error) bool {
	for _, e := range []error{kafka.UnknownMemberId, kafka.IllegalGeneration, kafka.FencedInstanceID, kafka.GroupAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// partitionWatchInterval is how often a member looks for partitions added
// to the group's topic.
const partitionWatchInterval = 5 * time.Second

// GroupConfig is a consumer group of one topic.
type GroupConfig struct {
	ID               string
	Topic            string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// Rejoining, if set, is called each time the group is left to be joined
	// afresh (and when Group returns): the member owns nothing until its
	// next generation.
	Rejoining func()
}

// HeartbeatInterval is how often a member of a group with this session
// timeout heartbeats: ten times a session, at most every 100 ms.
func HeartbeatInterval(session time.Duration) time.Duration {
	return max(session/10, 100*time.Millisecond)
}

// Generation is one generation of the group as this member sees it.
type Generation struct {
	ID         int32
	MemberID   string
	Partitions []int // assigned to this member, in order

	gen   *kafka.Generation
	cfg   GroupConfig
	c     *Client
	coord atomic.Pointer[net.Addr]
}

// Commit commits next offsets of the group's topic, by partition.
func (g *Generation) Commit(offsets map[int]int64) error {
	return g.gen.CommitOffsets(map[string]map[int]int64{g.cfg.Topic: offsets})
}

// Heartbeat sends one heartbeat of this member to the group's coordinator
// on the client's own connections (GroupHeartbeat), looking the
// coordinator up once and again after an error: the coordinator may have
// moved.
func (g *Generation) Heartbeat(ctx context.Context) error {
	addr := g.coord.Load()
	if addr == nil {
		a, err := g.c.GroupCoordinator(ctx, g.cfg.ID)
		if err != nil {
			return err
		}
		addr = &a
		g.coord.Store(addr)
	}
	err := g.c.GroupHeartbeat(ctx, *addr, g.cfg.ID, g.ID, g.MemberID)
	if err != nil && ctx.Err() == nil {
		g.coord.Store(nil)
	}
	return err
}

// Group runs a member of the consumer group until ctx ends (it then
// returns nil) or fn returns an error made with Fatal. fn is called once
// per generation with the partitions it was given and a context that ends
// when the generation does (a rebalance, or ctx); the next generation is
// joined only once fn has returned, so fn must let go of the partitions
// before it does. Other errors of fn are logged and the member goes on.
//
// kafka-go's ConsumerGroup can stay stuck in Next after "Unknown Member
// ID" when a peer leaves (kafka-go issue 781), so a Next that neither
// yields a generation nor an error within a join deadline, or that fails,
// makes Group close the group and join afresh.
//
// kafka-go looks the coordinator up through the first broker of its list
// that accepts a connection, and a paused or cut-off broker still accepts
// (its kernel does) and then never answers: each join afresh starts from
// the next broker, so one hung broker cannot keep the member out.
//
// Each join afresh is itself a new member that restarts the group's
// rebalance, so members that all gave up on one deadline would restart it
// for each other for good (seed 1 of the nemesis, under load): after each
// join that yields no generation the deadline grows, and the pause before
// joining again is jittered, until a generation is joined.
func (c *Client) Group(ctx context.Context, cfg GroupConfig, fn func(context.Context, *Generation) error) error {
	pause := backoff.Backoff{Min: time.Second, Max: 8 * time.Second}
	misses := 0
	for attempt := 0; ctx.Err() == nil; attempt++ {
		cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
			ID:                cfg.ID,
			Brokers:           rotate(c.cfg.Brokers, attempt),
			Dialer:            c.dialer,
			Topics:            []string{cfg.Topic},
			GroupBalancers:    []kafka.GroupBalancer{kafka.RoundRobinGroupBalancer{}},
			SessionTimeout:    cfg.SessionTimeout,
			RebalanceTimeout:  cfg.RebalanceTimeout,
			HeartbeatInterval: HeartbeatInterval(cfg.SessionTimeout),
			JoinGroupBackoff:  500 * time.Millisecond,
			StartOffset:       kafka.FirstOffset,
			// Partitions added to the topic end the generation, so the
			// next one assigns them: none goes uncounted.
			WatchPartitionChanges:  true,
			PartitionWatchInterval: partitionWatchInterval,
			Timeout:                c.cfg.DialTimeout,
			ErrorLogger:            kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug("kafka-go group: " + fmt.Sprintf(msg, args...)) }),
		})
		if err != nil {
			return fmt.Errorf("consumer group: %w", err)
		}
		// generations returns once the generation under way has ended;
		// only then does Close leave the group.
		joined := false
		err = c.generations(ctx, cg, cfg, joinDeadline(cfg, misses), &joined, fn)
		cg.Close()
		if joined {
			misses = 0
			pause.Reset()
		} else {
			misses++
		}
		if cfg.Rejoining != nil {
			cfg.Rejoining()
		}
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if IsFatal(err) {
			return err
		}
		c.log.Warn("rejoining the group afresh", "err", err)
		_ = pause.Wait(ctx)
	}
	return nil
}

// joinDeadline is how long a member waits for a generation after misses
// joins in a row that yielded none: a rebalance's and a session's length
// and 10 s, doubled per miss up to four times that, and jittered by up to
// half of it so that members that missed together do not give up together.
func joinDeadline(cfg GroupConfig, misses int) time.Duration {
	d := (cfg.RebalanceTimeout + cfg.SessionTimeout + 10*time.Second) << min(misses, 2)
	return d + rand.N(d/2+1)
}

// rotate returns brokers starting at the n-th (modulo their number).
func rotate(brokers []string, n int) []string {
	if len(brokers) == 0 {
		return brokers
	}
	n %= len(brokers)
	return append(slices.Clone(brokers[n:]), brokers[:n]...)
}

// generations serves one ConsumerGroup's generations until ctx ends or the
// group goes wrong; joined is set once a generation is.
func (c *Client) generations(ctx context.Context, cg *kafka.ConsumerGroup, cfg GroupConfig, joinDeadline time.Duration, joined *bool, fn func(context.Context, *Generation) error) error {
	for {
		// Next is asked for only between generations (it blocks while one
		// runs, by design), so the deadline measures a join, not a
		// generation.
		nctx, cancel := context.WithTimeout(ctx, joinDeadline)
		gen, err := cg.Next(nctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("no generation within %s", joinDeadline)
		case errors.Is(err, kafka.InvalidSessionTimeout):
			// The broker's bounds do not move on a rejoin: say so once.
			return Fatal(c.sessionRefused(ctx, cfg))
		case errors.Is(err, kafka.GroupAuthorizationFailed):
			return Fatal(c.Denied(err, OpRead, Group(cfg.ID)))
		case IsDenied(err):
			return Fatal(c.Denied(err, OpRead, Topic(cfg.Topic)))
		case IsAuth(err):
			return Fatal(err)
		case err != nil:
			return err
		}
		*joined = true
		g := &Generation{ID: gen.ID, MemberID: gen.MemberID, gen: gen, cfg: cfg, c: c}
		for _, a := range gen.Assignments[cfg.Topic] {
			g.Partitions = append(g.Partitions, a.ID)
		}
		slices.Sort(g.Partitions)
		c.log.Info("generation joined", "generation", g.ID, "member", g.MemberID, "partitions", g.Partitions)
		done := make(chan error, 1)
		gen.Start(func(gctx context.Context) {
			// The generation ends when the group rebalances or we stop.
			gctx, cancel := context.WithCancel(gctx)
			defer context.AfterFunc(ctx, cancel)()
			defer cancel()
			done <- fn(gctx, g)
		})
		if err := <-done; err != nil {
			if IsFatal(err) {
				return err // the member stops and says why, in one line
			}
			c.log.Error("generation failed", "generation", g.ID, "err", err)
		}
	}
}

// sessionRefused is the one line for a session timeout the group
// coordinator refuses: the setting, and the broker's bounds if it tells
// them (DescribeConfigs may be denied), else Kafka's defaults.
func (c *Client) sessionRefused(ctx context.Context, cfg GroupConfig) error {
	bounds := "Kafka's defaults are 6s to 30m0s"
	if lo, hi, err := c.sessionBounds(ctx, cfg.ID); err == nil {
		bounds = fmt.Sprintf("this broker allows %s to %s", lo, hi)
	}
	return fmt.Errorf("GROUP_SESSION_TIMEOUT=%s: the broker refuses it (%w): %s (group.min.session.timeout.ms, group.max.session.timeout.ms); set GROUP_SESSION_TIMEOUT within them",
		cfg.SessionTimeout, kafka.InvalidSessionTimeout, bounds)
}

// sessionBounds asks the group's coordinator for its session timeout bounds.
func (c *Client) sessionBounds(ctx context.Context, group string) (lo, hi time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	fc, err := c.kc.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil {
		err = fc.Error
	}
	if err != nil {
		return 0, 0, err
	}
	const minKey, maxKey = "group.min.session.timeout.ms", "group.max.session.timeout.ms"
	res, err := c.kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeBroker, ResourceName: strconv.Itoa(fc.Coordinator.NodeID), ConfigNames: []string{minKey, maxKey},
	}}})
	if err != nil {
		return 0, 0, err
	}
	ms := map[string]time.Duration{}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, 0, r.Error
		}
		for _, e := range r.ConfigEntries {
			if v, err := strconv.ParseInt(e.ConfigValue, 10, 64); err == nil {
				ms[e.ConfigName] = time.Duration(v) * time.Millisecond
			}
		}
	}
	lo, okLo := ms[minKey]
	hi, okHi := ms[maxKey]
	if !okLo || !okHi {
		return 0, 0, errors.New("bounds not described")
	}
	return lo, hi, nil
}

// errFatal marks errors that joining afresh cannot fix.
var errFatal = errors.New("fatal")

// fatalError is an error that stops a group member; it reads as the error
// it wraps, so the one line the user sees says what is wrong.
type fatalError struct{ err error }

func (e fatalError) Error() string        { return e.err.Error() }
func (e fatalError) Unwrap() error        { return e.err }
func (e fatalError) Is(target error) bool { return target == errFatal }

// Fatal marks err as one no rejoin can fix: Group returns it.
func Fatal(err error) error { return fatalError{err} }

// IsFatal reports whether err was made with Fatal.
func IsFatal(err error) bool { return errors.Is(err, errFatal) }
