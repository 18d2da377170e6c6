package kafkaio

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// testClient starts a one-broker kfake cluster with opts and a Client of
// it, both closed when t ends.
func testClient(t *testing.T, opts ...kfake.Opt) *Client {
	t.Helper()
	cluster, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	c, err := New(Config{Brokers: cluster.ListenAddrs(), DialTimeout: 5 * time.Second, ClientID: "test", MetadataMaxAge: time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
