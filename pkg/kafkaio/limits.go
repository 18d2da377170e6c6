package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// DefaultMaxMessageBytes is Apache Kafka's default message.max.bytes, the
// largest record batch a broker accepts (after compression) on a topic
// without max.message.bytes of its own.
const DefaultMaxMessageBytes = 1048588

// MaxMessageBytes asks the cluster for topic's max.message.bytes: the
// topic's own, or the broker default it inherits.
func (c *Client) MaxMessageBytes(ctx context.Context, topic string) (int, error) {
	const name = "max.message.bytes"
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name},
	}}})
	if err != nil {
		return 0, fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, fmt.Errorf("describe configs of %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				n, err := strconv.Atoi(e.ConfigValue)
				if err != nil || n <= 0 {
					return 0, fmt.Errorf("%s of %s: %q is not a size", name, topic, e.ConfigValue)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("%s of %s: not in the answer", name, topic)
}

// TooLarge reports a produce the broker refused for its size: a record
// batch over max.message.bytes. Sending it again cannot succeed; smaller
// requests can.
func TooLarge(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}
