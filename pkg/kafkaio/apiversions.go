package kafkaio

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// usedAPIs are the requests votestream's services send, directly or
// through kafka-go's consumer group and reader.
var usedAPIs = []protocol.ApiKey{
	protocol.ApiVersions, protocol.SaslHandshake, protocol.SaslAuthenticate, protocol.Metadata,
	protocol.CreateTopics, protocol.DescribeConfigs, protocol.Produce, protocol.Fetch, protocol.ListOffsets,
	protocol.FindCoordinator, protocol.JoinGroup, protocol.SyncGroup, protocol.Heartbeat,
	protocol.LeaveGroup, protocol.OffsetFetch, protocol.OffsetCommit,
}

// logAPIVersions logs, at debug level, the version of each API votestream
// uses that kafka-go's transport picks with this broker (its newest that
// the broker also speaks) and the APIs they share no version of: Kafka 4
// dropped many old versions (KIP-896), and this line says what is spoken.
func (c *Client) logAPIVersions(ctx context.Context) {
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	res, err := c.kc.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		c.log.Debug("kafka api versions unknown", "err", err)
		return
	}
	used, none := negotiated(res.ApiKeys)
	c.log.Debug("kafka api versions", "brokers", strings.Join(c.cfg.Brokers, ","),
		"versions", strings.Join(used, " "), "no_common_version", strings.Join(none, " "))
}

// negotiated lists "Name=vN" for every used API both sides speak, and
// "Name(broker vA-vB, kafka-go vC-vD)" for those without a common version
// (or that the broker lacks).
func negotiated(keys []kafka.ApiVersionsResponseApiKey) (used, none []string) {
	broker := make(map[protocol.ApiKey]kafka.ApiVersionsResponseApiKey, len(keys))
	for _, k := range keys {
		broker[protocol.ApiKey(k.ApiKey)] = k
	}
	for _, key := range usedAPIs {
		lo, hi := int(key.MinVersion()), int(key.MaxVersion())
		k, ok := broker[key]
		if !ok {
			none = append(none, fmt.Sprintf("%s(broker none, kafka-go v%d-v%d)", key, lo, hi))
			continue
		}
		if lo > k.MaxVersion || hi < k.MinVersion {
			none = append(none, fmt.Sprintf("%s(broker v%d-v%d, kafka-go v%d-v%d)", k.ApiName, k.MinVersion, k.MaxVersion, lo, hi))
			continue
		}
		used = append(used, fmt.Sprintf("%s=v%d", k.ApiName, key.SelectVersion(int16(k.MinVersion), int16(k.MaxVersion))))
	}
	return used, none
}
