package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/votestream/votestream/internal/cpuprofile"
	"github.com/votestream/votestream/internal/lifecycle"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/httpserver"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/logging"
	"github.com/votestream/votestream/pkg/memlimit"
)

func run(ctx context.Context, environ []string, stdout, stderr io.Writer) error {
	var cfg config.Counter
	if err := config.Parse(&cfg, environ); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	log := logging.New(cfg.Log, stderr).With("component", "counter", "replica", cfg.ReplicaID, "role", cfg.Role)
	memLimit := memlimit.Current() // main applies it
	if cfg.CPUProfile != "" {
		stopProfile, err := cpuprofile.Start(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	view, err := newElectionFromConfig(cfg, log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Never the password: only how the counter authenticates.
	log.Info("starting", "group", cfg.GroupID, "topic", cfg.Kafka.Topic, "brokers", cfg.Kafka.Brokers,
		"tls", cfg.Kafka.TLS.Enabled, "sasl_mechanism", cfg.Kafka.SASL.Mechanism, "sasl_username", cfg.Kafka.SASL.Username,
		"batch_max_records", cfg.BatchMaxRecords, "batch_max_wait", cfg.BatchMaxWait, "memory_limit_mib", memLimit>>20)

	// Instrumentation and listeners, bound before any Kafka work.
	reg := httpserver.NewRegistry()
	reg.MustRegister(newRoleInfo(cfg.Role))
	srv, err := listen(cfg.HTTPAddr, cfg.HTTPWebConfigFile, reg, log)
	if err != nil {
		return err
	}
	page := mountRole(cfg, srv, reg, view)

	// The actors stop in this order, whichever ends first: the Kafka side
	// (intake, final checkpoint, the election view, the client), the
	// viewers' memory budget, then the HTTP server, so /metrics shows the
	// final checkpoint until the end.
	var g lifecycle.Group
	if cfg.Role == config.RoleServe {
		g.Go(ctx, func(ctx context.Context) error { return serve(ctx, cfg, view, srv.SetReady, stdout, log) })
	} else {
		g.Go(ctx, func(ctx context.Context) error { return count(ctx, cfg, srv, reg, view, stdout, log) })
	}
	later := context.WithoutCancel(ctx)
	if page != nil {
		g.Go(later, func(ctx context.Context) error { budgetViewers(ctx, page, memLimit); return nil })
	}
	httpCtx, stopHTTP := context.WithCancel(later)
	g.Add(func() error { return srv.Serve(httpCtx) }, func() {
		if page != nil {
			page.Close() // the event streams would hold the shutdown up
		}
		stopHTTP()
	})
	if err := g.Run(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// listen binds the HTTP port; a test replaces it to reach the server.
var listen = httpserver.Listen

// count is ROLE=count and ROLE=hybrid once the HTTP port is bound: it
// counts its share of the votes until ctx ends, writes the final
// checkpoint, stops the election view and closes the Kafka client.
func count(ctx context.Context, cfg config.Counter, srv *httpserver.Server, reg *prometheus.Registry, view *election, stdout io.Writer, log *slog.Logger) error {
	own := newOwned()
	m := newMetrics(reg, own)
	stuck := newStalls(stuckAfter)
	reg.MustRegister(newStallCollector(stuck))
	srv.SetReadyCheck(stuck.check)

	client, parts, err := kafkaio.Open(ctx, cfg.Kafka, log)
	if err != nil {
		return err
	}
	defer client.Close()
	votesID := topicID(ctx, client, cfg.Kafka.Topic, log)
	untagged := cfg.Kafka.CheckpointTopic == cfg.Kafka.Topic+config.CheckpointSuffix
	if cfg.Role == config.RoleHybrid {
		view.topic, view.topicID, view.untagged = cfg.Kafka.Topic, votesID, untagged
		// The whole-election view stops before the Kafka client closes.
		defer startElection(ctx, view, client, cfg, parts[cfg.Kafka.CheckpointTopic], stdout)()
	}

	c := &counter{
		cfg:    cfg,
		client: client,
		store: &store{
			client: client, votes: cfg.Kafka.Topic, votesID: votesID, untagged: untagged,
			topic: cfg.Kafka.CheckpointTopic,
			dlq:   cfg.Kafka.DLQTopic, dlqN: parts[cfg.Kafka.DLQTopic],
			owner: cfg.ReplicaID, log: log,
			limits: &sizeLimits{client: client, log: log},
		},
		log:        log,
		partitions: parts[cfg.Kafka.Topic],
		metrics:    m,
		owned:      own,
		readers:    newReaders(reg, srv.SetReady, log),
		stalls:     stuck,
	}
	return c.run(ctx)
}

// defaultReplicaID names this process when REPLICA_ID is not set: the
// host name and a short random suffix, so two replicas on one host (tests,
// systemd units, a second counter beside make run) never share a name in
// logs, checkpoints and /results.
func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "counter"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// topicID is the votes topic's id, which every checkpoint names, or the
// zero id (checkpoints are then matched by the topic's name alone) when
// the cluster cannot say it.
func topicID(ctx context.Context, client *kafkaio.Client, topic string, log *slog.Logger) kafkaio.TopicID {
	id, err := client.TopicID(ctx, topic)
	switch {
	case err != nil:
		log.Warn("cannot read the votes topic's id: checkpoints are matched by its name alone", "topic", topic, "err", err)
	case id == kafkaio.TopicID{}:
		log.Warn("the cluster gives no topic ids (Kafka before 2.8): checkpoints are matched by the votes topic's name alone", "topic", topic)
	default:
		log.Info("votes topic", "topic", topic, "topic_id", uuid.UUID(id).String())
	}
	return id
}
