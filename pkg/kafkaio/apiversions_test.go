package kafkaio

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

func TestNegotiated(t *testing.T) {
	keys := []kafka.ApiVersionsResponseApiKey{
		{ApiKey: int(protocol.Produce), ApiName: "Produce", MinVersion: 3, MaxVersion: 99},
		{ApiKey: int(protocol.Fetch), ApiName: "Fetch", MinVersion: 4, MaxVersion: 5},
		// A broker that dropped every version kafka-go speaks.
		{ApiKey: int(protocol.JoinGroup), ApiName: "JoinGroup", MinVersion: 100, MaxVersion: 101},
	}
	used, none := negotiated(keys)
	want := fmt.Sprintf("Produce=v%d", protocol.Produce.MaxVersion())
	if !slices.Contains(used, want) || !slices.Contains(used, "Fetch=v5") {
		t.Errorf("used = %v, want %s and Fetch=v5", used, want)
	}
	joined := strings.Join(none, " ")
	if !strings.Contains(joined, "JoinGroup(broker v100-v101, kafka-go v") {
		t.Errorf("no common version = %q, want JoinGroup with both ranges", joined)
	}
	if !strings.Contains(joined, "Metadata(broker none") {
		t.Errorf("no common version = %q, want Metadata (absent from the broker)", joined)
	}
}
