package kafkaio

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is how a service reaches the cluster and which topics it uses.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `env:"KAFKA_BROKERS" envDefault:"localhost:9092" envSeparator:","`
	// Topic is the votes topic.
	Topic string `env:"KAFKA_TOPIC" envDefault:"votes"`
	// CheckpointTopic holds the counters' checkpoints: compacted, one
	// partition per votes partition. Empty: KAFKA_TOPIC's name with
	// ".checkpoints", so each votes topic gets checkpoints of its own and a
	// new election's topic never starts from another's.
	CheckpointTopic string `env:"KAFKA_CHECKPOINT_TOPIC"`
	// DLQTopic receives the rejected records, each with its reason. Empty:
	// KAFKA_TOPIC's name with ".dlq".
	DLQTopic string `env:"KAFKA_DLQ_TOPIC"`
	// Partitions is the partition count of the topics a service creates.
	Partitions int `env:"KAFKA_PARTITIONS" envDefault:"12"`
	// ReplicationFactor is the replication of the topics a service creates;
	// -1 takes the broker's default (hosted clusters: 3 or -1).
	ReplicationFactor int `env:"KAFKA_REPLICATION_FACTOR" envDefault:"1"`
	// CreateTopics creates missing topics at start; false: they must exist.
	CreateTopics bool `env:"KAFKA_CREATE_TOPICS" envDefault:"true"`
	// ClientID is the Kafka client id.
	ClientID string `env:"KAFKA_CLIENT_ID" envDefault:"votestream"`
	// DialTimeout bounds a connection; the start-up check asks each broker
	// in turn and fails once none has answered within it.
	DialTimeout time.Duration `env:"KAFKA_DIAL_TIMEOUT" envDefault:"10s"`
	// MetadataMaxAge bounds how long a moved partition leader goes
	// unnoticed: kafka-go refreshes its cached metadata at random within
	// it, not on errors.
	MetadataMaxAge time.Duration `env:"KAFKA_METADATA_MAX_AGE" envDefault:"2s"`
	TLS            TLS
	SASL           SASL
}

// Validate reports the first setting that cannot work.
func (k *Config) Validate() error {
	if len(k.Brokers) == 0 {
		return errors.New("KAFKA_BROKERS: empty: set host:port[,host:port...]")
	}
	for _, b := range k.Brokers {
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			return fmt.Errorf("KAFKA_BROKERS: %q is not host:port", b)
		}
	}
	switch {
	case k.Topic == "":
		return errors.New("KAFKA_TOPIC: empty")
	case k.CheckpointTopic == "" || k.CheckpointTopic == k.Topic:
		return errors.New("KAFKA_CHECKPOINT_TOPIC: must be set and differ from KAFKA_TOPIC")
	case k.DLQTopic == "" || k.DLQTopic == k.Topic || k.DLQTopic == k.CheckpointTopic:
		return errors.New("KAFKA_DLQ_TOPIC: must be set and differ from the votes and checkpoint topics")
	case k.Partitions < 1 || k.Partitions > 10000:
		return fmt.Errorf("KAFKA_PARTITIONS: %d: must be 1 to 10000", k.Partitions)
	case k.ReplicationFactor < -1 || k.ReplicationFactor == 0:
		return fmt.Errorf("KAFKA_REPLICATION_FACTOR: %d: must be at least 1, or -1 for the broker's default", k.ReplicationFactor)
	case k.DialTimeout <= 0:
		return fmt.Errorf("KAFKA_DIAL_TIMEOUT: %s: must be positive", k.DialTimeout)
	case k.MetadataMaxAge < 100*time.Millisecond:
		return fmt.Errorf("KAFKA_METADATA_MAX_AGE: %s: must be at least 100ms", k.MetadataMaxAge)
	}
	return k.validateSecurity()
}

// Compressions are the KAFKA_COMPRESSION names, as errors list them.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// CheckCompression is the one rule for KAFKA_COMPRESSION: one of
// Compressions.
func CheckCompression(name string) error {
	if slices.Contains(Compressions, name) {
		return nil
	}
	return fmt.Errorf("KAFKA_COMPRESSION: %q: must be %s or %s", name,
		strings.Join(Compressions[:len(Compressions)-1], ", "), Compressions[len(Compressions)-1])
}
