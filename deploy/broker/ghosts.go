package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfake gives a classic group member no session timer until an answer to
// its JoinGroup or SyncGroup reaches it, and stops waiting for the other
// members' SyncGroup once the leader's arrives. So a member whose process
// dies while its first JoinGroup waits for the rebalance (a counter killed
// as it starts) stays in the group for good, holding its partitions, and
// nobody is told to rebalance: those partitions are never counted. Kafka
// expires such a member after its session timeout.
//
// evictGhosts does it for kfake: it notes when each member last sent a
// group request, and makes a member of a stable group that sent nothing for
// its session plus rebalance timeout leave (a LeaveGroup in its name, which
// starts a rebalance). Any member kfake does time out is gone well before.
func evictGhosts(ctx context.Context, cluster *kfake.Cluster, addr string, every time.Duration, log *slog.Logger) {
	w := &ghostWatch{groups: make(map[string]*watchedGroup)}
	for _, key := range []int16{kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.OffsetCommit.Int16()} {
		cluster.ControlKey(key, func(r kmsg.Request) (kmsg.Response, error, bool) {
			w.saw(r, time.Now())
			return nil, nil, false // only watching: kfake handles it
		})
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for group, members := range w.ghosts(cluster, time.Now()) {
			for _, m := range members {
				err := leaveGroup(ctx, addr, group, m)
				log.Warn("evicted a group member silent past its session (kfake keeps it otherwise)",
					"group", group, "member", m, "err", err)
			}
		}
	}
}

type ghostWatch struct {
	mu     sync.Mutex
	groups map[string]*watchedGroup
}

type watchedGroup struct {
	silence time.Duration        // the longest session plus rebalance timeout joined with
	last    map[string]time.Time // member -> its last group request
}

// saw notes a group request.
func (w *ghostWatch) saw(r kmsg.Request, now time.Time) {
	var group, member string
	var silence time.Duration
	switch r := r.(type) {
	case *kmsg.JoinGroupRequest:
		group, member = r.Group, r.MemberID
		rebalance := r.RebalanceTimeoutMillis
		if r.Version == 0 {
			rebalance = r.SessionTimeoutMillis // v0 has none: the session is both
		}
		silence = time.Duration(r.SessionTimeoutMillis+rebalance) * time.Millisecond
	case *kmsg.SyncGroupRequest:
		group, member = r.Group, r.MemberID
	case *kmsg.HeartbeatRequest:
		group, member = r.Group, r.MemberID
	case *kmsg.OffsetCommitRequest:
		group, member = r.Group, r.MemberID
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.groups[group]
	if g == nil {
		if silence == 0 {
			return // not a group we know the timeouts of
		}
		g = &watchedGroup{last: make(map[string]time.Time)}
		w.groups[group] = g
	}
	g.silence = max(g.silence, silence)
	if member != "" {
		g.last[member] = now
	}
}

// ghosts returns, per group, the members of stable groups silent too long.
// A member first seen here (kfake named it) counts as heard from now.
func (w *ghostWatch) ghosts(cluster *kfake.Cluster, now time.Time) map[string][]string {
	w.mu.Lock()
	names := make([]string, 0, len(w.groups))
	for name := range w.groups {
		names = append(names, name)
	}
	w.mu.Unlock()
	out := make(map[string][]string)
	for _, name := range names {
		info := cluster.GroupInfo(name) // not under w.mu: kfake's loop may be in saw
		w.mu.Lock()
		g := w.groups[name]
		if info == nil {
			delete(w.groups, name)
			w.mu.Unlock()
			continue
		}
		last := make(map[string]time.Time, len(info.Members))
		for _, m := range info.Members {
			t, ok := g.last[m.MemberID]
			if !ok {
				t = now
			}
			last[m.MemberID] = t
			if info.State == "Stable" && now.Sub(t) > g.silence {
				out[name] = append(out[name], m.MemberID)
			}
		}
		g.last = last
		w.mu.Unlock()
	}
	return out
}

// leaveGroup sends a LeaveGroup for member of group to the broker at addr.
func leaveGroup(ctx context.Context, addr, group, member string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3 // members by ID, not yet flexible
	req.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	req.Members = append(req.Members, m)
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("votestream-broker")).AppendRequest(nil, req, 1)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if len(body) < 4 {
		return fmt.Errorf("leave group: short response")
	}
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if err := resp.ReadFrom(body[4:]); err != nil { // after the correlation ID
		return err
	}
	code := resp.ErrorCode
	for _, m := range resp.Members {
		code = max(code, m.ErrorCode)
	}
	if code != 0 {
		return fmt.Errorf("leave group: error code %d", code)
	}
	return nil
}
