package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// GroupCoordinator returns the address of the broker coordinating group.
func (c *Client) GroupCoordinator(ctx context.Context, group string) (net.Addr, error) {
	fc, err := c.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
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
	res, err := c.Heartbeat(ctx, &kafka.HeartbeatRequest{
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
