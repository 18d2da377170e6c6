// Package config holds every service's settings, read from the environment
// with caarlos0/env: one struct per service, UPPER_SNAKE names, defaults in
// tags. Parse turns any bad value into one line naming the variable.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/votestream/votestream/pkg/vote"
)

// Kafka is how a service reaches the cluster and which topics it uses.
type Kafka struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `env:"KAFKA_BROKERS" envDefault:"localhost:9092" envSeparator:","`
	// Topic is the votes topic.
	Topic string `env:"KAFKA_TOPIC" envDefault:"votes"`
	// CheckpointTopic holds the counters' checkpoints: compacted, one
	// partition per votes partition. Empty: KAFKA_TOPIC's name with
	// ".checkpoints", so each votes topic gets checkpoints of its own and a
	// new election's topic never starts from another's (see deriveTopics).
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
	// DialTimeout bounds a connection; the start-up check fails after it.
	DialTimeout time.Duration `env:"KAFKA_DIAL_TIMEOUT" envDefault:"10s"`
	// MetadataMaxAge bounds how long a moved partition leader goes
	// unnoticed: kafka-go refreshes its cached metadata at random within
	// it, not on errors.
	MetadataMaxAge time.Duration `env:"KAFKA_METADATA_MAX_AGE" envDefault:"2s"`
	TLS            TLS
	SASL           SASL
}

// Validate reports the first setting that cannot work.
func (k *Kafka) Validate() error {
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

// Log chooses how a service logs.
type Log struct {
	// Format is text or json.
	Format string `env:"LOG_FORMAT" envDefault:"text"`
	// Level is debug, info, warn or error; at debug the start-up check also
	// logs the Kafka API versions kafka-go uses with the broker.
	Level string `env:"LOG_LEVEL" envDefault:"info"`
}

// Validate reports a format or level slog does not know.
func (l *Log) Validate() error {
	if l.Format != "text" && l.Format != "json" {
		return fmt.Errorf("LOG_FORMAT: %q: must be text or json", l.Format)
	}
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("LOG_LEVEL: %q: must be debug, info, warn or error", l.Level)
}

// Producer is the producer's configuration.
type Producer struct {
	Kafka Kafka
	Log   Log
	// Seed fixes every vote, so a restarted producer resumes the same
	// election; "random" (or empty) draws a new one, logged at start.
	Seed string `env:"SEED" envDefault:"20241105"`
	// Scale is the fraction of the voters generated: 0.005 is the seed's
	// 1,146,500 votes, 1 the whole electorate.
	Scale float64 `env:"SCALE" envDefault:"0.005"`
	// IncludeDC also generates the District of Columbia.
	IncludeDC bool `env:"INCLUDE_DC" envDefault:"false"`
	// Election is seed (the seed's model) or 2024 (its certified result,
	// replayed as an election night); empty is seed.
	Election string `env:"ELECTION" envDefault:"seed"`
	// VotesPerBatch is the votes per batch, and per JSON file.
	VotesPerBatch int `env:"VOTES_PER_BATCH" envDefault:"20971"`
	// BatchInterval is the time between batches; 0 publishes as fast as it
	// can.
	BatchInterval time.Duration `env:"BATCH_INTERVAL" envDefault:"5s"`
	// OutputDir receives each batch as votes_F-L.json (F and L: the
	// first and last sequence it holds); empty turns the files
	// off.
	OutputDir string `env:"OUTPUT_DIR" envDefault:"./vote_stream"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `env:"KAFKA_COMPRESSION" envDefault:"snappy"`
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":9101"`
	// HTTPWebConfigFile turns on TLS and basic auth for the HTTP port.
	HTTPWebConfigFile string `env:"HTTP_WEB_CONFIG_FILE"`
}

// Validate reports the first setting that cannot work.
func (p *Producer) Validate() error {
	if err := p.Kafka.Validate(); err != nil {
		return err
	}
	if err := p.Log.Validate(); err != nil {
		return err
	}
	if err := vote.CheckScale(p.Scale); err != nil {
		return fmt.Errorf("SCALE: %w (0.005 is the seed's 0.5%% sample)", err)
	}
	switch {
	case !validElection(p.Election):
		return fmt.Errorf("ELECTION: %q: must be seed or 2024", p.Election)
	case p.VotesPerBatch < 1 || p.VotesPerBatch > 10_000_000:
		return fmt.Errorf("VOTES_PER_BATCH: %d: must be 1 to 10000000", p.VotesPerBatch)
	case p.BatchInterval < 0:
		return fmt.Errorf("BATCH_INTERVAL: %s: must not be negative (0 publishes as fast as it can)", p.BatchInterval)
	}
	return CheckCompression(p.Compression)
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

// Counter is the counter's configuration.
type Counter struct {
	Kafka Kafka
	Log   Log
	// GroupID is the counters' consumer group.
	GroupID string `env:"GROUP_ID" envDefault:"vote-counter"`
	// ReplicaID names this replica in logs and checkpoints; empty means the
	// host name and a short random suffix, unique per process.
	ReplicaID string `env:"REPLICA_ID"`
	// Role is what this replica does: hybrid counts and serves the live
	// page; count only counts (its HTTP port keeps /metrics, /healthz and
	// /readyz); serve joins no group, reads only the checkpoint topic,
	// never writes to Kafka, and serves the live page, /results, /events
	// and the election metrics.
	Role string `env:"ROLE" envDefault:"hybrid"`
	// BatchMaxRecords ends a micro-batch after this many records...
	BatchMaxRecords int `env:"BATCH_MAX_RECORDS" envDefault:"50000"`
	// BatchMaxWait ...or after this long.
	BatchMaxWait time.Duration `env:"BATCH_MAX_WAIT" envDefault:"1s"`
	// SessionTimeout is how long a silent replica keeps its partitions; cut
	// off, it stops showing them after four fifths of the smaller of this and
	// GROUP_REBALANCE_TIMEOUT (the lease).
	SessionTimeout time.Duration `env:"GROUP_SESSION_TIMEOUT" envDefault:"10s"`
	// RebalanceTimeout is the time members get to rejoin; a replica's
	// teardown takes at most half.
	RebalanceTimeout time.Duration `env:"GROUP_REBALANCE_TIMEOUT" envDefault:"10s"`
	// HTTPAddr serves the live page (/), /results, /events, /metrics,
	// /healthz and /readyz.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":9102"`
	// HTTPWebConfigFile turns on TLS and basic auth for the HTTP port.
	HTTPWebConfigFile string `env:"HTTP_WEB_CONFIG_FILE"`
	// HTTPMaxViewers bounds the live page's event streams (/events); past
	// it they get 503 and the page polls /results instead.
	HTTPMaxViewers int `env:"HTTP_MAX_VIEWERS" envDefault:"20000"`
	// Scale must be the producer's: with IncludeDC it says how many votes
	// each state expects, from which percent reporting and race calls follow.
	Scale float64 `env:"SCALE" envDefault:"0.005"`
	// IncludeDC must be the producer's: whether DC's votes are expected (and
	// its 3 electoral votes at stake).
	IncludeDC bool `env:"INCLUDE_DC" envDefault:"false"`
	// Election must be the producer's: which election's votes are expected,
	// and whether it has a night's clock.
	Election string `env:"ELECTION" envDefault:"seed"`

	// CPUProfile names a file the counter writes a CPU profile of its whole
	// run to; empty writes none (opt-in, for make bench and profiling).
	CPUProfile string `env:"CPU_PROFILE"`
}

// The counter's roles (ROLE).
const (
	RoleHybrid = "hybrid" // counts and serves: one process does both
	RoleCount  = "count"  // counts and checkpoints, serves no page
	RoleServe  = "serve"  // serves the page from the checkpoints, counts nothing
)

// Validate reports the first setting that cannot work.
func (c *Counter) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if err := c.Log.Validate(); err != nil {
		return err
	}
	switch {
	case c.Role != RoleHybrid && c.Role != RoleCount && c.Role != RoleServe:
		return fmt.Errorf("ROLE: %q: must be hybrid, count or serve", c.Role)
	case c.GroupID == "":
		return errors.New("GROUP_ID: empty")
	case c.BatchMaxRecords < 1:
		return fmt.Errorf("BATCH_MAX_RECORDS: %d: must be at least 1", c.BatchMaxRecords)
	case c.BatchMaxWait <= 0:
		return fmt.Errorf("BATCH_MAX_WAIT: %s: must be positive", c.BatchMaxWait)
	case c.SessionTimeout < time.Second:
		return fmt.Errorf("GROUP_SESSION_TIMEOUT: %s: must be at least 1s", c.SessionTimeout)
	case c.RebalanceTimeout < time.Second:
		return fmt.Errorf("GROUP_REBALANCE_TIMEOUT: %s: must be at least 1s", c.RebalanceTimeout)
	case !validElection(c.Election):
		return fmt.Errorf("ELECTION: %q: must be seed or 2024, and the producer's", c.Election)
	case c.HTTPMaxViewers < 0:
		return fmt.Errorf("HTTP_MAX_VIEWERS: %d: must not be negative (0: no event streams, the page polls)", c.HTTPMaxViewers)
	}
	if err := vote.CheckScale(c.Scale); err != nil {
		return fmt.Errorf("SCALE: %w, and the producer's", err)
	}
	return nil
}

// Broker is the local development broker's configuration.
type Broker struct {
	Log Log
	// Addr is host:port to listen on; the broker advertises it too.
	Addr string `env:"BROKER_ADDR" envDefault:"127.0.0.1:9092"`
	// DataDir keeps the topics across restarts.
	DataDir string `env:"BROKER_DATA_DIR" envDefault:"./.kfake-data"`
}

// Validate reports the first setting that cannot work.
func (b *Broker) Validate() error {
	if err := b.Log.Validate(); err != nil {
		return err
	}
	if b.DataDir == "" {
		return errors.New("BROKER_DATA_DIR: empty")
	}
	return nil
}

// Validator is a configuration that can check itself.
type Validator interface{ Validate() error }

// Parse fills cfg from environ (os.Environ's "KEY=value" form) and validates
// it. Every error names the variable at fault. A variable set to the empty
// string is empty, not its default: OUTPUT_DIR= disables the JSON files and
// GROUP_ID= is an error.
func Parse(cfg Validator, environ []string) error {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		// An empty name would be read as the value of every untagged
		// field (Kafka, Log); Windows has such entries ("=C:=C:\\dir").
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			vars[k] = v
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: vars}); err != nil {
		return explain(cfg, err)
	}
	clearEmpty(reflect.ValueOf(cfg).Elem(), vars)
	deriveTopics(reflect.ValueOf(cfg).Elem(), vars)
	return cfg.Validate()
}

// Suffixes of the topic names derived from KAFKA_TOPIC.
const (
	CheckpointSuffix = ".checkpoints"
	DLQSuffix        = ".dlq"
)

// deriveTopics names the checkpoint and dead-letter topics after the votes
// topic when their variables are not set (set but empty stays an error).
func deriveTopics(v reflect.Value, vars map[string]string) {
	for i := 0; i < v.NumField(); i++ {
		k, ok := v.Field(i).Addr().Interface().(*Kafka)
		if !ok {
			continue
		}
		if _, set := vars["KAFKA_CHECKPOINT_TOPIC"]; !set {
			k.CheckpointTopic = k.Topic + CheckpointSuffix
		}
		if _, set := vars["KAFKA_DLQ_TOPIC"]; !set {
			k.DLQTopic = k.Topic + DLQSuffix
		}
	}
}

// clearEmpty zeroes the fields whose variable is set but empty, which env
// fills with the default instead.
func clearEmpty(v reflect.Value, vars map[string]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
			if val, ok := vars[key]; ok && val == "" {
				v.Field(i).SetZero()
			}
		} else if f.Type.Kind() == reflect.Struct {
			clearEmpty(v.Field(i), vars)
		}
	}
}

// explain rewrites env's errors, which name Go fields, to name variables.
func explain(cfg any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return err
	}
	var pe env.ParseError
	if !errors.As(agg.Errors[0], &pe) {
		return agg.Errors[0]
	}
	name := pe.Name
	if key := envKey(reflect.TypeOf(cfg).Elem(), pe.Name); key != "" {
		name = key
	}
	return fmt.Errorf("%s: %v", name, unwrapAll(pe.Err))
}

// unwrapAll drops strconv's and time's package prefixes, which say nothing
// to someone setting an environment variable.
func unwrapAll(err error) string {
	// env wraps some errors ("unable to parse duration: time: ..."), which
	// hides the prefixes from TrimPrefix.
	var pve env.ParseValueError
	if errors.As(err, &pve) && pve.Err != nil {
		err = pve.Err
	}
	msg := err.Error()
	for _, p := range []string{"strconv.ParseInt: ", "strconv.ParseFloat: ", "strconv.ParseBool: ", "strconv.ParseUint: ", "time: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func envKey(t reflect.Type, field string) string {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == field {
			key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			return key
		}
		if f.Type.Kind() == reflect.Struct {
			if key := envKey(f.Type, field); key != "" {
				return key
			}
		}
	}
	return ""
}

// validElection reports whether ELECTION names a model votegen has (empty
// is the seed's).
func validElection(e string) bool { return e == "" || e == "seed" || e == "2024" }
