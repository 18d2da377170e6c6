package e2e

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
)

// TestKafkaAPIVersions pings one Apache Kafka node at debug level: the line
// of API versions kafka-go uses must list every API votestream sends and
// none without a common version (Kafka 4 dropped old versions, KIP-896).
func TestKafkaAPIVersions(t *testing.T) {
	k := StartKafka(t, KafkaOptions{})
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := kafkaio.New(config.Kafka{Brokers: []string{k.Addr}, DialTimeout: 10 * time.Second, ClientID: "e2e"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`msg="kafka api versions".*`).FindString(buf.String())
	t.Logf("%s: %s", k.Version, line)
	for _, api := range []string{"Produce", "Fetch", "ListOffsets", "Metadata", "JoinGroup", "OffsetCommit", "CreateTopics"} {
		if !regexp.MustCompile(`[" ]` + api + `=v\d+`).MatchString(line) {
			t.Errorf("no version of %s in %q", api, line)
		}
	}
	if !regexp.MustCompile(`no_common_version=""`).MatchString(line) {
		t.Errorf("APIs without a common version: %q", line)
	}
}
