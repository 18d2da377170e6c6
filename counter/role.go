package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/results/web"
)

// newRoleInfo exports the replica's ROLE, so a dashboard or a scrape
// config can tell the counting replicas from the serving ones.
func newRoleInfo(role string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        prometheus.BuildFQName(httpserver.Namespace, "counter", "role_info"),
		Help:        "1, labelled with this replica's ROLE (hybrid, count or serve).",
		ConstLabels: prometheus.Labels{"role": role},
	})
	g.Set(1)
	return g
}

// mountRole routes what the role serves: the live page, /results, /events
// and the election metrics for hybrid and serve, or for count a 404 that
// says where they are. It returns the live page's handler (nil for count),
// whose viewers' memory budget runs beside the server and which must be
// closed before the server shuts down.
func mountRole(cfg config.Counter, srv *httpserver.Server, reg *prometheus.Registry, view *election) *web.Handler {
	if cfg.Role == config.RoleCount {
		notHere := func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not served by this replica (ROLE=count): the live page, /results and /events are served by ROLE=serve or ROLE=hybrid replicas",
				http.StatusNotFound)
		}
		for _, p := range []string{"GET /{$}", "GET /assets/", "GET /results", "GET /events"} {
			srv.Handle(p, http.HandlerFunc(notHere))
		}
		return nil
	}
	reg.MustRegister(newElectionCollector(view, cfg.ReplicaID))
	return mountElection(srv, reg, view, cfg.HTTPMaxViewers)
}

// serve is ROLE=serve once the HTTP server runs: it follows the checkpoint
// topic, and nothing else, until ctx ends. It joins no group, reads no vote
// and writes nothing to Kafka, so it needs only READ and DESCRIBE on the
// checkpoint topic; it is ready once it has read every checkpoint
// partition to its end.
func serve(ctx context.Context, cfg config.Counter, view *election, ready func(bool), stdout io.Writer, log *slog.Logger) error {
	cfg.Kafka.CreateTopics = false // a write: the counting replicas create the topics
	client, err := kafkaio.New(cfg.Kafka, log)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		return err
	}
	parts, err := checkpointPartitions(ctx, client, cfg.Kafka, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Checkpoints of another votes topic are left out, as a counting
	// replica leaves them; without DESCRIBE on the votes topic the id is
	// unknown and they are matched by the topic's name.
	view.topic, view.topicID = cfg.Kafka.Topic, topicID(ctx, client, cfg.Kafka.Topic, log)
	view.untagged = cfg.Kafka.CheckpointTopic == cfg.Kafka.Topic+config.CheckpointSuffix
	stop := startElection(ctx, view, client, cfg, parts, stdout)
	defer stop()
	if !waitSynced(ctx, view) {
		return nil
	}
	ready(true)
	log.Info("serving the election: every checkpoint partition read", "partitions", parts)
	<-ctx.Done()
	log.Info("stopped")
	return nil
}

// checkpointPartitions returns the checkpoint topic's partition count,
// waiting for the counting replicas to create it if need be. A missing
// ACL is not waited for: no retry can grant it.
func checkpointPartitions(ctx context.Context, client *kafkaio.Client, k kafkaio.Config, log *slog.Logger) (int, error) {
	spec := []kafkaio.TopicSpec{{Name: k.CheckpointTopic, Partitions: k.Partitions, Compacted: true}}
	have, err := retry(ctx, log, "checkpoint topic", func() (map[string]int, error) {
		return client.EnsureTopics(ctx, spec)
	})
	if err != nil {
		return 0, fmt.Errorf("checkpoint topic: %w", err)
	}
	// The view retries whatever fails; a missing READ must stop the
	// replica here instead, in one line, not leave it never ready.
	first, _, err := client.Offsets(ctx, k.CheckpointTopic, 0)
	if err == nil {
		_, _, _, err = client.FetchFrom(ctx, k.CheckpointTopic, 0, first, 10*time.Millisecond)
	}
	if kafkaio.IsAuth(err) {
		return 0, err
	}
	return have[k.CheckpointTopic], nil
}

// waitSynced waits until the view has read every checkpoint partition to
// its end once, and reports whether it has (false: ctx ended first).
func waitSynced(ctx context.Context, view *election) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for view.results().AsOf.IsZero() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
