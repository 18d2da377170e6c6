package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errLeaseLost ends a generation whose lease ran out or was revoked.
var errLeaseLost = errors.New("partition lease lost")

// lease is how long this replica can be sure the group coordinator still
// counts it a member of the generation, so that nobody else has been given
// its partitions. The coordinator gives a member's partitions away no
// sooner than one session timeout after it last read a heartbeat from it
// (the member expires), or one rebalance timeout after a rebalance began
// that the member has not rejoined; both start no earlier than the send
// time of the last heartbeat it acknowledged. So the lease runs to that
// send time plus the smaller timeout, minus a margin for the time between
// checking the lease and acting on it (a scrape on the wire, a scheduler
// pause). While the lease is not held the replica exports none of its
// partitions and writes no checkpoint.
type lease struct {
	ttl time.Duration

	mu    sync.Mutex
	until time.Time // zero until a heartbeat is acknowledged
	err   error     // why the lease ended, once it has
	timer *time.Timer
	lost  chan struct{} // closed when the lease ends for good
}

// leaseTTL is the rule above: the smaller of the two timeouts, less a
// fifth of it as the margin.
func leaseTTL(session, rebalance time.Duration) time.Duration {
	base := min(session, rebalance)
	return base - base/5
}

// newLease returns a lease not yet held. Unless a heartbeat is
// acknowledged within ttl, it ends.
func newLease(ttl time.Duration) *lease {
	l := &lease{ttl: ttl, lost: make(chan struct{})}
	l.mu.Lock()
	l.timer = time.AfterFunc(ttl, l.check)
	l.mu.Unlock()
	return l
}

// renew extends the lease from the send time of an acknowledged heartbeat.
// A late acknowledgement of an older heartbeat never shortens it.
func (l *lease) renew(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := sent.Add(l.ttl)
	if l.err != nil || !u.After(l.until) {
		return
	}
	l.until = u
	l.timer.Reset(time.Until(u))
}

// check ends the lease once its time is up; renew may have moved the time.
func (l *lease) check() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if d := time.Until(l.until); d > 0 {
		l.timer.Reset(d)
		return
	}
	l.endLocked(fmt.Errorf("%w: no heartbeat acknowledged for %s", errLeaseLost, l.ttl))
}

// end gives the lease up for good, saying why.
func (l *lease) end(why error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.endLocked(fmt.Errorf("%w: %w", errLeaseLost, why))
	}
}

func (l *lease) endLocked(err error) {
	l.err = err
	l.timer.Stop()
	close(l.lost)
}

// held reports whether the partitions are surely still ours at now.
func (l *lease) held(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil && now.Before(l.until)
}

// bound returns ctx ending when the lease does, so a checkpoint write
// cannot start or go on past it, or an error if it is not held now.
func (l *lease) bound(ctx context.Context) (context.Context, context.CancelFunc, error) {
	l.mu.Lock()
	until, err := l.until, l.err
	l.mu.Unlock()
	switch {
	case err != nil:
		return nil, nil, err
	case !time.Now().Before(until):
		return nil, nil, fmt.Errorf("%w: not held", errLeaseLost)
	}
	ctx, cancel := context.WithDeadline(ctx, until)
	return ctx, cancel, nil
}

// reason is why the lease ended, or nil.
func (l *lease) reason() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// stop releases the timer of a lease no longer needed.
func (l *lease) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer.Stop()
}
