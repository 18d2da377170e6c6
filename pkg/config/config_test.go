package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/votestream/votestream/pkg/config"
)

// The defaults documented in README.md's configuration tables.
var (
	defaultKafka = config.Kafka{
		Brokers:           []string{"localhost:9092"},
		Topic:             "votes",
		CheckpointTopic:   "votes.checkpoints",
		DLQTopic:          "votes.dlq",
		Partitions:        12,
		ReplicationFactor: 1,
		CreateTopics:      true,
		ClientID:          "votestream",
		DialTimeout:       10 * time.Second,
		MetadataMaxAge:    2 * time.Second,
	}
	defaultLog = config.Log{Format: "text", Level: "info"}
)

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Validator
		want config.Validator
	}{
		{"producer", &config.Producer{}, &config.Producer{
			Kafka:         defaultKafka,
			Log:           defaultLog,
			Seed:          "20241105",
			Scale:         0.005,
			IncludeDC:     false,
			Election:      "seed",
			VotesPerBatch: 20971,
			BatchInterval: 5 * time.Second,
			OutputDir:     "./vote_stream",
			Compression:   "snappy",
			HTTPAddr:      ":9101",
		}},
		{"counter", &config.Counter{}, &config.Counter{
			Kafka:            defaultKafka,
			Log:              defaultLog,
			GroupID:          "vote-counter",
			ReplicaID:        "",
			Role:             config.RoleHybrid,
			BatchMaxRecords:  50000,
			BatchMaxWait:     time.Second,
			SessionTimeout:   10 * time.Second,
			RebalanceTimeout: 10 * time.Second,
			HTTPAddr:         ":9102",
			HTTPMaxViewers:   20000,
			Scale:            0.005,
			Election:         "seed",
		}},
		{"broker", &config.Broker{}, &config.Broker{
			Log:     defaultLog,
			Addr:    "127.0.0.1:9092",
			DataDir: "./.kfake-data",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Unrelated variables, and ones without "=", are ignored.
			environ := []string{"PATH=/usr/bin", "HOME=/root", "NOEQUALS", "=x"}
			if err := config.Parse(tt.cfg, environ); err != nil {
				t.Fatalf("Parse(defaults): %v", err)
			}
			if !reflect.DeepEqual(tt.cfg, tt.want) {
				t.Errorf("defaults:\n got  %+v\n want %+v", tt.cfg, tt.want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	var p config.Producer
	environ := []string{
		"KAFKA_BROKERS=a:1,b:2", "KAFKA_TOPIC=t", "KAFKA_CHECKPOINT_TOPIC=t.cp", "KAFKA_DLQ_TOPIC=t.dlq",
		"KAFKA_PARTITIONS=3", "KAFKA_REPLICATION_FACTOR=-1", "KAFKA_CREATE_TOPICS=false",
		"KAFKA_CLIENT_ID=me", "KAFKA_DIAL_TIMEOUT=3s", "LOG_FORMAT=json", "LOG_LEVEL=DEBUG",
		"SEED=42", "SCALE=1", "INCLUDE_DC=true", "VOTES_PER_BATCH=1", "BATCH_INTERVAL=0",
		"ELECTION=2024", "OUTPUT_DIR=/tmp/v", "KAFKA_COMPRESSION=zstd", "HTTP_ADDR=:0",
		"SEED=7", // the last of a repeated variable wins, as in a shell
	}
	if err := config.Parse(&p, environ); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Producer{
		Kafka: config.Kafka{
			Brokers: []string{"a:1", "b:2"}, Topic: "t", CheckpointTopic: "t.cp", DLQTopic: "t.dlq",
			Partitions: 3, ReplicationFactor: -1, CreateTopics: false, ClientID: "me", DialTimeout: 3 * time.Second,
			MetadataMaxAge: 2 * time.Second,
		},
		Log:  config.Log{Format: "json", Level: "DEBUG"},
		Seed: "7", Scale: 1, IncludeDC: true, Election: "2024", VotesPerBatch: 1, BatchInterval: 0,
		OutputDir: "/tmp/v", Compression: "zstd", HTTPAddr: ":0",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Parse:\n got  %+v\n want %+v", p, want)
	}
}

// TestDerivedTopics checks the checkpoint and dead-letter topics are named
// after KAFKA_TOPIC unless set, so each votes topic has checkpoints of its
// own.
func TestDerivedTopics(t *testing.T) {
	tests := []struct {
		env            []string
		checkpoint, dl string
	}{
		{nil, "votes.checkpoints", "votes.dlq"},
		{[]string{"KAFKA_TOPIC=votes2"}, "votes2.checkpoints", "votes2.dlq"},
		{[]string{"KAFKA_TOPIC=votes2", "KAFKA_CHECKPOINT_TOPIC=cp"}, "cp", "votes2.dlq"},
		{[]string{"KAFKA_TOPIC=votes2", "KAFKA_DLQ_TOPIC=dead"}, "votes2.checkpoints", "dead"},
	}
	for _, tt := range tests {
		for _, cfg := range []config.Validator{&config.Producer{}, &config.Counter{}} {
			if err := config.Parse(cfg, tt.env); err != nil {
				t.Fatalf("Parse(%q): %v", tt.env, err)
			}
			k := reflect.ValueOf(cfg).Elem().FieldByName("Kafka").Interface().(config.Kafka)
			if k.CheckpointTopic != tt.checkpoint || k.DLQTopic != tt.dl {
				t.Errorf("%T %q: topics %q and %q, want %q and %q", cfg, tt.env, k.CheckpointTopic, k.DLQTopic, tt.checkpoint, tt.dl)
			}
		}
	}
	var c config.Counter
	if err := config.Parse(&c, []string{"KAFKA_CHECKPOINT_TOPIC="}); err == nil || !strings.Contains(err.Error(), "KAFKA_CHECKPOINT_TOPIC") {
		t.Errorf("KAFKA_CHECKPOINT_TOPIC set empty: %v, want an error naming it", err)
	}
}

// TestEmptyIsEmpty checks a variable set to "" is not replaced by its
// default: README says OUTPUT_DIR= disables the JSON files.
func TestEmptyIsEmpty(t *testing.T) {
	var p config.Producer
	if err := config.Parse(&p, []string{"OUTPUT_DIR=", "SEED=", "INCLUDE_DC="}); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.OutputDir != "" {
		t.Errorf("OUTPUT_DIR= gives OutputDir %q, want empty (files disabled)", p.OutputDir)
	}
	if p.Scale != 0.005 || p.Compression != "snappy" {
		t.Errorf("unset variables lost their defaults: %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func() config.Validator
		env     []string
		wantVar string
		want    string // also in the message
	}{
		{"batch interval not a duration", producer, []string{"BATCH_INTERVAL=abc"}, "BATCH_INTERVAL", `invalid duration "abc"`},
		{"batch interval negative", producer, []string{"BATCH_INTERVAL=-1s"}, "BATCH_INTERVAL", "must not be negative"},
		{"votes per batch negative", producer, []string{"VOTES_PER_BATCH=-1"}, "VOTES_PER_BATCH", "-1: must be 1 to"},
		{"votes per batch zero", producer, []string{"VOTES_PER_BATCH=0"}, "VOTES_PER_BATCH", "must be 1 to"},
		{"votes per batch huge", producer, []string{"VOTES_PER_BATCH=10000001"}, "VOTES_PER_BATCH", "must be 1 to"},
		{"votes per batch not a number", producer, []string{"VOTES_PER_BATCH=many"}, "VOTES_PER_BATCH", "invalid syntax"},
		{"scale 0", producer, []string{"SCALE=0"}, "SCALE", "0: must be more than 0"},
		{"scale 2", producer, []string{"SCALE=2"}, "SCALE", "2: must be more than 0 and at most 1"},
		{"scale negative", producer, []string{"SCALE=-0.1"}, "SCALE", "must be more than 0"},
		{"scale NaN", producer, []string{"SCALE=NaN"}, "SCALE", "NaN"},
		{"scale not a number", producer, []string{"SCALE=half"}, "SCALE", "invalid syntax"},
		{"counter scale 0", counter, []string{"SCALE=0"}, "SCALE", "0: must be more than 0"},
		{"role unknown", counter, []string{"ROLE=web"}, "ROLE", `"web": must be hybrid, count or serve`},
		{"role empty", counter, []string{"ROLE="}, "ROLE", `"": must be hybrid, count or serve`},
		{"max viewers negative", counter, []string{"HTTP_MAX_VIEWERS=-1"}, "HTTP_MAX_VIEWERS", "must not be negative"},
		{"counter scale 2", counter, []string{"SCALE=2"}, "SCALE", "2: must be more than 0 and at most 1, and the producer's"},
		{"election unknown", producer, []string{"ELECTION=2020"}, "ELECTION", "\"2020\": must be seed or 2024"},
		{"counter election unknown", counter, []string{"ELECTION=Seed"}, "ELECTION", "must be seed or 2024, and the producer's"},
		{"counter include dc", counter, []string{"INCLUDE_DC=maybe"}, "INCLUDE_DC", "invalid syntax"},
		{"include DC not a bool", producer, []string{"INCLUDE_DC=maybe"}, "INCLUDE_DC", "invalid syntax"},
		{"compression", producer, []string{"KAFKA_COMPRESSION=foo"}, "KAFKA_COMPRESSION", `"foo": must be none, gzip`},
		{"log format", producer, []string{"LOG_FORMAT=xml"}, "LOG_FORMAT", `"xml": must be text or json`},
		{"log format counter", counter, []string{"LOG_FORMAT=xml"}, "LOG_FORMAT", "must be text or json"},
		{"log level", counter, []string{"LOG_LEVEL=loud"}, "LOG_LEVEL", "must be debug"},
		{"partitions 0", producer, []string{"KAFKA_PARTITIONS=0"}, "KAFKA_PARTITIONS", "0: must be 1 to 10000"},
		{"partitions 0 counter", counter, []string{"KAFKA_PARTITIONS=0"}, "KAFKA_PARTITIONS", "must be 1 to 10000"},
		{"partitions too many", counter, []string{"KAFKA_PARTITIONS=10001"}, "KAFKA_PARTITIONS", "must be 1 to 10000"},
		{"partitions not a number", counter, []string{"KAFKA_PARTITIONS=twelve"}, "KAFKA_PARTITIONS", "invalid syntax"},
		{"replication 0", counter, []string{"KAFKA_REPLICATION_FACTOR=0"}, "KAFKA_REPLICATION_FACTOR", "at least 1, or -1"},
		{"replication -2", counter, []string{"KAFKA_REPLICATION_FACTOR=-2"}, "KAFKA_REPLICATION_FACTOR", "at least 1, or -1"},
		{"brokers no port", producer, []string{"KAFKA_BROKERS=nohostport"}, "KAFKA_BROKERS", `"nohostport" is not host:port`},
		{"brokers empty port", counter, []string{"KAFKA_BROKERS=host:"}, "KAFKA_BROKERS", "not host:port"},
		{"brokers empty host", counter, []string{"KAFKA_BROKERS=:9092"}, "KAFKA_BROKERS", "not host:port"},
		{"brokers second bad", counter, []string{"KAFKA_BROKERS=a:1,b"}, "KAFKA_BROKERS", `"b" is not host:port`},
		{"brokers set empty", counter, []string{"KAFKA_BROKERS="}, "KAFKA_BROKERS", "empty"},
		{"topic empty", producer, []string{"KAFKA_TOPIC="}, "KAFKA_TOPIC", "empty"},
		{"checkpoint topic same", counter, []string{"KAFKA_CHECKPOINT_TOPIC=votes"}, "KAFKA_CHECKPOINT_TOPIC", "differ"},
		{"dlq topic same", counter, []string{"KAFKA_DLQ_TOPIC=votes.checkpoints"}, "KAFKA_DLQ_TOPIC", "differ"},
		{"dial timeout 0", counter, []string{"KAFKA_DIAL_TIMEOUT=0"}, "KAFKA_DIAL_TIMEOUT", "must be positive"},
		{"dial timeout bad", counter, []string{"KAFKA_DIAL_TIMEOUT=10"}, "KAFKA_DIAL_TIMEOUT", "missing unit"},
		{"group id empty", counter, []string{"GROUP_ID="}, "GROUP_ID", "empty"},
		{"batch max wait 0", counter, []string{"BATCH_MAX_WAIT=0"}, "BATCH_MAX_WAIT", "0s: must be positive"},
		{"batch max wait negative", counter, []string{"BATCH_MAX_WAIT=-1s"}, "BATCH_MAX_WAIT", "must be positive"},
		{"batch max records 0", counter, []string{"BATCH_MAX_RECORDS=0"}, "BATCH_MAX_RECORDS", "must be at least 1"},
		{"batch max records bad", counter, []string{"BATCH_MAX_RECORDS=x"}, "BATCH_MAX_RECORDS", "invalid syntax"},
		{"session timeout", counter, []string{"GROUP_SESSION_TIMEOUT=500ms"}, "GROUP_SESSION_TIMEOUT", "at least 1s"},
		{"rebalance timeout", counter, []string{"GROUP_REBALANCE_TIMEOUT=0s"}, "GROUP_REBALANCE_TIMEOUT", "at least 1s"},
		{"broker data dir empty", broker, []string{"BROKER_DATA_DIR="}, "BROKER_DATA_DIR", "empty"},
		{"broker log", broker, []string{"LOG_FORMAT=yaml"}, "LOG_FORMAT", "must be text or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := config.Parse(tt.cfg(), tt.env)
			if err == nil {
				t.Fatalf("Parse(%q): no error", tt.env)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.wantVar+": ") {
				t.Errorf("Parse(%q) = %q, want it to start with %q", tt.env, msg, tt.wantVar+": ")
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tt.env, msg, tt.want)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("Parse(%q) = %q, want one line", tt.env, msg)
			}
			for _, noise := range []string{"strconv.", "parse error on field", "time: "} {
				if strings.Contains(msg, noise) {
					t.Errorf("Parse(%q) = %q: names Go internals (%q)", tt.env, msg, noise)
				}
			}
		})
	}
}

func producer() config.Validator { return &config.Producer{} }
func counter() config.Validator  { return &config.Counter{} }
func broker() config.Validator   { return &config.Broker{} }

// TestValidateDirect covers Validate on values built in code, as tests of
// other packages do.
func TestValidateDirect(t *testing.T) {
	c := config.Counter{Kafka: defaultKafka, Log: defaultLog, Role: config.RoleHybrid, BatchMaxRecords: 1, BatchMaxWait: time.Second,
		SessionTimeout: time.Second, RebalanceTimeout: time.Second, Scale: 0.005}
	if err := c.Validate(); err == nil || err.Error() != "GROUP_ID: empty" {
		t.Errorf("Counter without GroupID: Validate() = %v, want GROUP_ID: empty", err)
	}
	c.GroupID = "g"
	if err := c.Validate(); err != nil {
		t.Errorf("valid Counter: Validate() = %v", err)
	}
	k := defaultKafka
	k.Brokers = nil
	if err := k.Validate(); err == nil || !strings.HasPrefix(err.Error(), "KAFKA_BROKERS: empty") {
		t.Errorf("Kafka without brokers: Validate() = %v, want KAFKA_BROKERS: empty...", err)
	}
	for _, level := range []string{"debug", "INFO", "Warn", "error"} {
		l := config.Log{Format: "json", Level: level}
		if err := l.Validate(); err != nil {
			t.Errorf("LOG_LEVEL=%s: %v", level, err)
		}
	}
}
