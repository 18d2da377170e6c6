// Package kafkaio is votestream's Kafka wiring over segmentio/kafka-go: the
// dialer and transport built from config, topic bootstrap and checks, ordered
// produce with retries, and reading a partition's last records.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Headers votestream's producers put on every vote record before the key
// carried the sequence (AppendSeqKey), so counters could drop a record the
// producer wrote twice after losing an acknowledgement. Sequence still
// reads them.
const (
	HeaderProducer = "votestream-producer"
	HeaderSeq      = "votestream-seq"
)

// Client is votestream's way to Kafka. It holds a kafka-go client and the
// dialer its consumer groups need, both with the same TLS and SASL
// settings, and keeps them to itself: users see only the calls below.
type Client struct {
	kc     *kafka.Client
	dialer *kafka.Dialer
	cfg    Config
	log    *slog.Logger
}

// requestTimeout bounds every request's round trip, and half of it is the
// time a broker may take to answer a produce (kafka-go's default is
// 500ms). Without it a broker that keeps its connections open but answers
// nothing (stopped, in a long GC pause) stalls a fetch or produce until it
// comes back, and a produce waiting on acks=all from followers slower than
// 500ms (a busy cluster) fails after its records are already written, so
// every retry writes them again. A longer KAFKA_DIAL_TIMEOUT raises it, so
// Ping waits as long as it says.
const requestTimeout = 10 * time.Second

// New builds a client from cfg. It does not connect: call Ping.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	tlsConfig, mechanism, err := Security(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	warnInsecure(cfg, log)
	dialer := &kafka.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       cfg.DialTimeout,
		DualStack:     true,
		TLS:           tlsConfig,
		SASLMechanism: mechanism,
	}
	transport := &kafka.Transport{
		ClientID:    cfg.ClientID,
		DialTimeout: cfg.DialTimeout,
		MetadataTTL: cfg.MetadataMaxAge,
		IdleTimeout: 5 * time.Minute,
		TLS:         tlsConfig,
		SASL:        mechanism,
	}
	return &Client{
		kc:     &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport, Timeout: max(requestTimeout, cfg.DialTimeout)},
		dialer: dialer,
		cfg:    cfg,
		log:    log,
	}, nil
}

// Open is how a service starts on Kafka: it builds the client, checks the
// cluster answers (one clear line if not) and makes sure every topic exists
// with the right shape. It returns the topics' partition counts.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Client, map[string]int, error) {
	c, err := New(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	answered, err := c.ping(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	// The start-up asks the broker that answered: kafka-go would dial the
	// bootstrap brokers in a random order again, and may keep a paused one.
	all := c.kc.Addr
	c.kc.Addr = kafka.TCP(answered)
	parts, err := c.EnsureTopics(ctx, Topics(cfg))
	c.kc.Addr = all
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, parts, nil
}

// Close releases the transport's idle connections.
func (c *Client) Close() {
	if t, ok := c.kc.Transport.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}

// Ping asks the cluster for its metadata, so that an unreachable or
// misconfigured cluster is reported at start in one line. It asks each
// broker in turn, each within the dial timeout: kafka-go keeps the first
// bootstrap broker that accepts a connection, and a paused broker accepts
// and never answers (nemesis seed 103: a counter started then exited 1).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.ping(ctx)
	return err
}

// ping is Ping, returning the broker that answered.
func (c *Client) ping(ctx context.Context) (string, error) {
	var err error
	for i, b := range c.cfg.Brokers {
		mctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		_, err = c.kc.Metadata(mctx, &kafka.MetadataRequest{Addr: kafka.TCP(b), Topics: []string{}})
		cancel()
		if err == nil {
			mctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
			defer cancel()
			c.logAPIVersions(mctx)
			return b, nil
		}
		if ctx.Err() != nil {
			break
		}
		if !isTimeout(err) {
			// TLS and SASL answers are the same from every broker. A
			// timeout is told apart (paused broker, or TLS to a plaintext
			// port) only once none has answered.
			if e := c.explainConnect(ctx, err); e != nil {
				return "", e
			}
		}
		if i < len(c.cfg.Brokers)-1 {
			c.log.Warn("kafka broker did not answer, asking the next", "broker", b, "err", err)
		}
	}
	if e := c.explainConnect(ctx, err); e != nil {
		return "", e
	}
	return "", c.explain(err)
}

// explain turns transport errors into one line a user can act on.
func (c *Client) explain(err error) error {
	brokers := strings.Join(c.cfg.Brokers, ",")
	var netErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("kafka at %s did not answer within %s (KAFKA_BROKERS, KAFKA_DIAL_TIMEOUT): %w", brokers, c.cfg.DialTimeout, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach kafka at %s (KAFKA_BROKERS): %v", brokers, netErr.Err)
	}
	return fmt.Errorf("kafka at %s: %w", brokers, err)
}

// TopicSpec is a topic votestream needs, with the shape it must have.
type TopicSpec struct {
	Name       string
	Partitions int
	Compacted  bool
	// Retain keeps records forever: the votes are the ledger the counters
	// replay, so they must not expire before every counter has read them.
	Retain bool
}

// Topics is the set every service needs: votes, checkpoints (one per votes
// partition, compacted) and dead letters.
func Topics(cfg Config) []TopicSpec {
	return []TopicSpec{
		{Name: cfg.Topic, Partitions: cfg.Partitions, Retain: true},
		{Name: cfg.CheckpointTopic, Partitions: cfg.Partitions, Compacted: true},
		{Name: cfg.DLQTopic, Partitions: cfg.Partitions},
	}
}

// EnsureTopics creates the missing topics when allowed and checks that every
// topic has the partition count and cleanup policy votestream relies on. It
// returns the votes topic's partition count, which may differ from
// KAFKA_PARTITIONS when the topic already existed.
func (c *Client) EnsureTopics(ctx context.Context, specs []TopicSpec) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*c.cfg.DialTimeout)
	defer cancel()
	have, err := c.partitionCounts(ctx, specs)
	if err != nil {
		return nil, err
	}
	var missing []kafka.TopicConfig
	for _, s := range specs {
		if _, ok := have[s.Name]; ok {
			continue
		}
		if !c.cfg.CreateTopics {
			// kafka-go's metadata cache cannot tell a missing topic from
			// one this user may not describe, so name both.
			return nil, fmt.Errorf("topic %q does not exist (or %s may not DESCRIBE it) and KAFKA_CREATE_TOPICS=false: create it with %d partitions%s",
				s.Name, c.principal(), s.Partitions, policyHint(s))
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: c.cfg.ReplicationFactor}
		if s.Compacted {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
		}
		if s.Retain {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "-1"})
		}
		missing = append(missing, tc)
	}
	if len(missing) > 0 {
		res, err := c.kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: missing})
		if err != nil {
			return nil, c.explain(err)
		}
		for _, tc := range missing {
			err := res.Errors[tc.Topic]
			switch {
			case IsDenied(err):
				return nil, authf("topic %q is not visible to %s, which may not create it: if it exists, grant DESCRIBE on it; if not, create the missing topics (%s) or grant CREATE on the cluster",
					tc.Topic, c.principal(), describeSpecs(specs, have))
			case errors.Is(err, kafka.TopicAlreadyExists):
				// Another service created it meanwhile, or this user may
				// not see it: waitPartitions tells which.
				continue
			case err != nil:
				return nil, fmt.Errorf("create topic %q: %w", tc.Topic, err)
			}
			c.log.Info("topic created", "topic", tc.Topic)
		}
		if have, err = c.waitPartitions(ctx, specs); err != nil {
			return nil, err
		}
	}
	if err := c.checkShape(ctx, specs, have); err != nil {
		return nil, err
	}
	return have, nil
}

// describeSpecs says how to create the missing topics by hand.
func describeSpecs(specs []TopicSpec, have map[string]int) string {
	var out []string
	for _, s := range specs {
		if _, ok := have[s.Name]; !ok {
			out = append(out, fmt.Sprintf("%s with %d partitions%s", s.Name, s.Partitions, policyHint(s)))
		}
	}
	return strings.Join(out, "; ")
}

func policyHint(s TopicSpec) string {
	if s.Compacted {
		return " and cleanup.policy=compact"
	}
	if s.Retain {
		return " and retention.ms=-1"
	}
	return ""
}

// partitionCounts reports the partition count of each spec that exists.
func (c *Client) partitionCounts(ctx context.Context, specs []TopicSpec) (map[string]int, error) {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, c.explain(err)
	}
	have := make(map[string]int)
	for _, t := range md.Topics {
		switch {
		case t.Error == nil:
			have[t.Name] = len(t.Partitions)
		case errors.Is(t.Error, kafka.UnknownTopicOrPartition):
		case IsDenied(t.Error):
			return nil, c.Denied(t.Error, OpDescribe, Topic(t.Name))
		default:
			return nil, fmt.Errorf("topic %q: %w", t.Name, t.Error)
		}
	}
	return have, nil
}

// leadersElected reports whether every partition of specs has a leader: a
// real cluster elects them a moment after CreateTopics answers, and a
// partition without one refuses reads and writes.
func (c *Client) leadersElected(ctx context.Context, specs []TopicSpec) bool {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return false
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			if t.Error != nil || p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
		if len(t.Partitions) == 0 {
			return false
		}
	}
	return true
}

// waitPartitions waits, bounded by ctx, until freshly created topics show
// in metadata with leaders for every partition.
func (c *Client) waitPartitions(ctx context.Context, specs []TopicSpec) (map[string]int, error) {
	for {
		have, err := c.partitionCounts(ctx, specs)
		if err == nil && len(have) == len(specs) && c.leadersElected(ctx, specs) {
			return have, nil
		}
		select {
		case <-ctx.Done():
			for _, s := range specs {
				if _, ok := have[s.Name]; !ok && err == nil {
					// The broker says the topic exists (it was created, or
					// creating it said it already was) yet metadata does
					// not show it: this user may not see it.
					return nil, authf("topic %q exists but %s cannot see it: grant DESCRIBE on it (READ or WRITE imply it)", s.Name, c.principal())
				}
			}
			return nil, fmt.Errorf("topics not ready after creation: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkShape verifies partition counts and cleanup policies: checkpoints
// rely on one checkpoint partition per votes partition and on compaction.
func (c *Client) checkShape(ctx context.Context, specs []TopicSpec, have map[string]int) error {
	votes := have[specs[0].Name]
	for _, s := range specs[1:] {
		if s.Compacted && have[s.Name] != votes {
			return fmt.Errorf("topic %q has %d partitions but %q has %d: they must match (recreate %q with %d partitions)",
				s.Name, have[s.Name], specs[0].Name, votes, s.Name, votes)
		}
	}
	var resources []kafka.DescribeConfigRequestResource
	for _, s := range specs {
		names := []string{"cleanup.policy"}
		if s.Retain {
			names = append(names, "retention.ms", "retention.bytes")
		}
		resources = append(resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, ConfigNames: names,
		})
	}
	res, err := c.kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		// Some hosted clusters refuse DescribeConfigs; the shape check is a
		// courtesy, not a requirement for exact counts, so carry on.
		c.log.Warn("cannot check the topics' cleanup.policy", "err", err)
		return nil
	}
	for _, r := range res.Resources {
		if IsDenied(r.Error) {
			c.log.Warn("cannot check the topic's cleanup.policy: grant DESCRIBE_CONFIGS on it to check it at start", "topic", r.ResourceName, "principal", c.principal())
			continue
		}
		if r.Error != nil {
			c.log.Warn("cannot check the topic's cleanup.policy", "topic", r.ResourceName, "err", r.Error)
			continue
		}
		for _, s := range specs {
			if s.Name != r.ResourceName {
				continue
			}
			for _, e := range r.ConfigEntries {
				if s.Retain {
					c.warnRetention(s.Name, e.ConfigName, e.ConfigValue)
				}
				if e.ConfigName != "cleanup.policy" {
					continue
				}
				compacted := strings.Contains(e.ConfigValue, "compact")
				if s.Compacted && !compacted {
					return fmt.Errorf("topic %q has cleanup.policy=%s: it must be compact (kafka-configs --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)",
						s.Name, e.ConfigValue, c.cfg.Brokers[0], s.Name)
				}
				if !s.Compacted && compacted {
					return fmt.Errorf("topic %q has cleanup.policy=%s: its records must not be compacted away (kafka-configs --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config cleanup.policy=delete)",
						s.Name, e.ConfigValue, c.cfg.Brokers[0], s.Name)
				}
			}
		}
	}
	return nil
}

// warnRetention says, loudly, that a votes topic may delete votes before
// they are counted: a counter that reaches the hole stops there (it never
// counts past it) and shows it, but the votes are gone.
func (c *Client) warnRetention(topic, name, value string) {
	if (name != "retention.ms" && name != "retention.bytes") || value == "-1" {
		return
	}
	c.log.Error("the votes topic deletes records: votes not counted before they are deleted are lost, and a counter that reaches the hole stops there (votestream_counter_partition_reader_stopped); keep votes forever with "+name+"=-1",
		"topic", topic, name, value,
		"fix", fmt.Sprintf("kafka-configs --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config %s=-1", c.cfg.Brokers[0], topic, name))
}

// Compression maps a KAFKA_COMPRESSION name, which CheckCompression
// accepts, to kafka-go's codec; "none" is no compression.
func Compression(name string) kafka.Compression {
	switch name {
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "lz4":
		return kafka.Lz4
	case "zstd":
		return kafka.Zstd
	}
	return 0
}

// Produce writes records to one partition with RequireAll, retrying with
// backoff until they are acknowledged or ctx ends. Records of one partition
// must be produced by one caller in order: a retry resends the same records
// before anything after them, so each partition's log holds them in order,
// possibly with a repeated run that counters recognise by sequence number.
// The bytes behind the records must not change while Produce runs.
func (c *Client) Produce(ctx context.Context, topic string, partition int, compression kafka.Compression, records []kafka.Record) error {
	_, err := c.produce(ctx, topic, partition, compression, records)
	return err
}

// produce is Produce, also saying whether it tried more than once. Each
// attempt reads records of its own: one given up on (its deadline passed
// before the broker answered) may still be being encoded by kafka-go's
// connection goroutine, which nothing orders with this one, so a retry
// must not rewind the readers that attempt reads; and after such an
// attempt nobody may write the bytes behind them again (see Batch).
func (c *Client) produce(ctx context.Context, topic string, partition int, compression kafka.Compression, records []kafka.Record) (retried bool, err error) {
	records = own(records)
	b := retryBackoff
	for attempt := 1; ; attempt++ {
		recs := records
		if attempt > 1 {
			recs = reread(records)
		}
		res, err := c.kc.Produce(ctx, &kafka.ProduceRequest{
			Topic:        topic,
			Partition:    partition,
			RequiredAcks: kafka.RequireAll,
			Compression:  compression,
			Records:      kafka.NewRecordReader(recs...),
		})
		if err == nil && res.Error != nil {
			err = res.Error
		}
		retried = attempt > 1
		if err == nil {
			return retried, nil
		}
		if IsDenied(err) {
			return retried, c.Denied(err, OpWrite, Topic(topic))
		}
		if fatal(err) {
			return retried, fmt.Errorf("produce to %s/%d: %w", topic, partition, err)
		}
		if ctx.Err() != nil {
			return true, fmt.Errorf("produce to %s/%d: %w (last error: %v)", topic, partition, ctx.Err(), err)
		}
		c.log.Warn("produce failed, retrying", "topic", topic, "partition", partition, "attempt", attempt, "err", err)
		_ = b.Wait(ctx) // an ended ctx is reported by the next attempt
	}
}

// own makes every key and value of records a *Bytes, which reread can read
// again from the start; any other kafka.Bytes is read once, here.
func own(records []kafka.Record) []kafka.Record {
	for i := range records {
		for _, b := range []*kafka.Bytes{&records[i].Key, &records[i].Value} {
			if _, ok := (*b).(*Bytes); ok || *b == nil {
				continue
			}
			data, _ := io.ReadAll(*b)
			*b = &Bytes{b: data}
		}
	}
	return records
}

// reread is records with readers of their own over the same bytes, at the
// start: what a retry sends.
func reread(records []kafka.Record) []kafka.Record {
	out := make([]kafka.Record, len(records))
	bs := make([]Bytes, 2*len(records))
	for i, r := range records {
		out[i] = r
		if k, ok := r.Key.(*Bytes); ok {
			bs[2*i].Reset(k.b)
			out[i].Key = &bs[2*i]
		}
		if v, ok := r.Value.(*Bytes); ok {
			bs[2*i+1].Reset(v.b)
			out[i].Value = &bs[2*i+1]
		}
	}
	return out
}

// fatal reports errors that retrying cannot fix.
func fatal(err error) bool {
	for _, e := range []error{
		kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.SASLAuthenticationFailed, kafka.MessageSizeTooLarge, kafka.RecordListTooLarge,
		kafka.InvalidRecord, kafka.UnsupportedSASLMechanism,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Offsets returns a partition's first offset and end offset (the high
// watermark: the offset the next record will get).
// A partition between leaders is waited out.
func (c *Client) Offsets(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	err = c.retry(ctx, "list offsets", func() error {
		first, end, err = c.offsets(ctx, topic, partition)
		return err
	})
	return first, end, err
}

func (c *Client) offsets(ctx context.Context, topic string, partition int) (first, end int64, err error) {
	res, err := c.kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)}},
	})
	if err != nil {
		return 0, 0, c.Denied(err, OpDescribe, Topic(topic))
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			if p.Error != nil {
				return 0, 0, c.Denied(p.Error, OpDescribe, Topic(topic))
			}
			return p.FirstOffset, p.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("list offsets %s/%d: partition missing from response", topic, partition)
}

// EndOffsets returns the high watermark of every partition of topic,
// waiting out partitions between leaders.
func (c *Client) EndOffsets(ctx context.Context, topic string, partitions int) (out map[int]int64, err error) {
	err = c.retry(ctx, "list end offsets", func() error {
		out, err = c.endOffsets(ctx, topic, partitions)
		return err
	})
	return out, err
}

func (c *Client) endOffsets(ctx context.Context, topic string, partitions int) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := c.kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, c.Denied(err, OpDescribe, Topic(topic))
	}
	out := make(map[int]int64, partitions)
	for _, p := range res.Topics[topic] {
		if IsDenied(p.Error) {
			return nil, c.Denied(p.Error, OpDescribe, Topic(topic))
		}
		if p.Error != nil {
			return nil, fmt.Errorf("%s/%d: %w", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out, nil
}

// Record is a fetched record with its key, value and headers read into
// memory.
type Record struct {
	Offset  int64
	Key     []byte
	Value   []byte
	Headers []kafka.Header
}

// ScanBack reads a partition's records from its end towards its start, a
// window at a time, calling fn for each record of a window in log order,
// later windows first. It stops when fn returns false or the start is
// reached.
func (c *Client) ScanBack(ctx context.Context, topic string, partition int, window int64, fn func(Record) bool) error {
	first, end, err := c.Offsets(ctx, topic, partition)
	if err != nil {
		return fmt.Errorf("offsets of %s/%d: %w", topic, partition, err)
	}
	for hi := end; hi > first; hi -= window {
		lo := max(first, hi-window)
		recs, err := c.readRange(ctx, topic, partition, lo, hi)
		if err != nil {
			return err
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if !fn(recs[i]) {
				return nil
			}
		}
	}
	return nil
}

// readRange reads the records in [lo, hi) of a partition.
func (c *Client) readRange(ctx context.Context, topic string, partition int, lo, hi int64) ([]Record, error) {
	var out []Record
	for off := lo; off < hi; {
		recs, next, _, err := c.fetchRecords(ctx, topic, partition, off, hi, 500*time.Millisecond)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if next == off {
			// Nothing at or after off below hi (compacted away or aborted):
			// the range is done.
			break
		}
		off = next
	}
	return out, nil
}

// fetchRecords is one fetch of a partition: the records in [offset, hi),
// copied out of the response, the offset to ask for next (offset itself
// when there were none) and the partition's high watermark.
func (c *Client) fetchRecords(ctx context.Context, topic string, partition int, offset, hi int64, maxWait time.Duration) (recs []Record, next, hwm int64, err error) {
	res, err := c.kc.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: maxWait,
	})
	if err == nil {
		err = res.Error
	}
	if IsDenied(err) {
		return nil, offset, 0, c.Denied(err, OpRead, Topic(topic))
	}
	if err != nil {
		return nil, offset, 0, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	next = offset
	for {
		r, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, offset, 0, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if r.Offset < offset || r.Offset >= hi {
			continue // a fetch returns whole batches
		}
		key, err := kafka.ReadAll(r.Key)
		if err != nil {
			return nil, offset, 0, fmt.Errorf("read %s/%d at %d: %w", topic, partition, r.Offset, err)
		}
		val, err := kafka.ReadAll(r.Value)
		if err != nil {
			return nil, offset, 0, fmt.Errorf("read %s/%d at %d: %w", topic, partition, r.Offset, err)
		}
		hs := make([]kafka.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)}
		}
		recs = append(recs, Record{Offset: r.Offset, Key: key, Value: val, Headers: hs})
		next = r.Offset + 1
	}
	return recs, next, res.HighWatermark, nil
}

// LastRecord returns the last record of a partition, or nil when it is
// empty.
func (c *Client) LastRecord(ctx context.Context, topic string, partition int) (*Record, error) {
	var last *Record
	// Compaction can leave gaps, so look back a few offsets, not one.
	err := c.ScanBack(ctx, topic, partition, 64, func(r Record) bool {
		last = &r
		return false
	})
	return last, err
}

// PartitionCount returns topic's number of partitions, as the cluster
// says it now.
func (c *Client) PartitionCount(ctx context.Context, topic string) (int, error) {
	have, err := c.partitionCounts(ctx, []TopicSpec{{Name: topic}})
	if err != nil {
		return 0, err
	}
	n, ok := have[topic]
	if !ok {
		return 0, fmt.Errorf("topic %q: %w", topic, kafka.UnknownTopicOrPartition)
	}
	return n, nil
}
