// Package workers holds the bench's baselines and its ceiling: a naive
// producer and counter (uuid + encoding/json + kafka-go) and the raw read of
// a topic. Each runs as its own process (the bench's binary with a
// sub-command), so its peak RSS is measured like the services'.
package workers

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/internal/cpuprofile"
	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/vote"
)

// Names are the workers' sub-commands.
var Names = []string{"naive-produce", "naive-count", "raw-read"}

// Run runs the worker name with its flags in args, its CPU profiled with
// -cpu-profile; it prints "records=N seconds=S" when done.
func Run(ctx context.Context, name string, args []string, stdout io.Writer) error {
	f, err := parseWorker(name, args)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := cpuprofile.Start(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	switch name {
	case "naive-produce":
		return naiveProduce(ctx, f, stdout)
	case "naive-count":
		return naiveCount(ctx, f, stdout)
	case "raw-read":
		return readAll(ctx, f, stdout, nil)
	}
	return fmt.Errorf("no worker %q", name)
}

type workerFlags struct {
	brokers, topic string
	votes          int64
	mode           string
	maxBytes       int
	compression    string
	cpuProfile     string
}

func parseWorker(name string, args []string) (workerFlags, error) {
	var f workerFlags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "bootstrap brokers")
	fs.StringVar(&f.topic, "topic", "", "topic")
	fs.Int64Var(&f.votes, "votes", 0, "votes to produce (naive-produce)")
	fs.StringVar(&f.mode, "mode", "fetch", "raw-read: fetch (kafka.Client.Fetch loop) or reader (kafka.Reader)")
	fs.IntVar(&f.maxBytes, "max-bytes", 256<<10, "raw-read fetch: bytes per partition fetch (the counter's)")
	fs.StringVar(&f.compression, "compression", "snappy", "naive-produce: none, gzip, snappy, lz4 or zstd (votestream's KAFKA_COMPRESSION)")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file")
	return f, fs.Parse(args)
}

// fileVote is the seed's record, as a naive program declares it.
type fileVote struct {
	VoteID    string `json:"vote_id"`
	Timestamp string `json:"timestamp"`
	State     string `json:"state"`
	Candidate string `json:"candidate"`
	AgeGroup  string `json:"age_group"`
	VoteCount int    `json:"vote_count"`
}

// naiveProduce is the naive producer: uuid.New, encoding/json and a
// kafka-go Writer (acks=all, votestream's compression, batches up to 1 MB), one WriteMessages per
// seed-sized batch of 20,971 votes.
func naiveProduce(ctx context.Context, f workerFlags, stdout io.Writer) error {
	w := &kafka.Writer{
		Addr:         kafka.TCP(strings.Split(f.brokers, ",")...),
		Topic:        f.topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Compression:  kafkaio.Compression(f.compression),
		BatchSize:    10000,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	var weights []string
	for _, c := range vote.Candidates() {
		for range c.Weight {
			weights = append(weights, c.Name)
		}
	}
	states, ages := vote.States(), vote.AgeGroups()
	start := time.Now()
	msgs := make([]kafka.Message, 0, 20971)
	for sent := int64(0); sent < f.votes; {
		msgs = msgs[:0]
		now := time.Now().UTC().Format("2006-01-02T15:04:05.000000")
		for len(msgs) < cap(msgs) && sent+int64(len(msgs)) < f.votes {
			v := fileVote{
				VoteID:    uuid.New().String(),
				Timestamp: now,
				State:     states[rand.IntN(vote.NumStates-1)].Name,
				Candidate: weights[rand.IntN(len(weights))],
				AgeGroup:  ages[rand.IntN(vote.NumAgeGroups)],
				VoteCount: 1,
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(v.VoteID), Value: b})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		sent += int64(len(msgs))
	}
	fmt.Fprintf(stdout, "records=%d seconds=%.4f\n", f.votes, time.Since(start).Seconds())
	return nil
}

func workerClient(f workerFlags) (*kafkaio.Client, error) {
	return kafkaio.New(config.Kafka{Brokers: strings.Split(f.brokers, ","), ClientID: "votestream-bench", DialTimeout: 10 * time.Second},
		slog.New(slog.DiscardHandler))
}

// endOffsets returns every partition's high watermark.
func endOffsets(ctx context.Context, c *kafkaio.Client, topic string) (map[int]int64, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return nil, fmt.Errorf("topic %s: not found", topic)
	}
	return c.EndOffsets(ctx, topic, len(md.Topics[0].Partitions))
}

// readAll reads every partition of f.topic up to its end at the start, one
// goroutine per partition, handing each record's value to fn (nil: discard).
func readAll(ctx context.Context, f workerFlags, stdout io.Writer, fn func(part int, value []byte)) error {
	c, err := workerClient(f)
	if err != nil {
		return err
	}
	defer c.Close()
	ends, err := endOffsets(ctx, c, f.topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		total   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err; cancel() })
	}
	start := time.Now()
	for part, end := range ends {
		if end == 0 {
			continue
		}
		wg.Go(func() {
			var n int64
			defer func() { total.Add(n) }()
			if f.mode == "reader" {
				r := kafka.NewReader(kafka.ReaderConfig{
					Brokers: strings.Split(f.brokers, ","), Topic: f.topic, Partition: part,
					MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 4096, ReadLagInterval: -1,
				})
				defer r.Close()
				for {
					m, err := r.FetchMessage(ctx)
					if err != nil {
						fail(err)
						return
					}
					n++
					if fn != nil {
						fn(part, m.Value)
					}
					if m.Offset+1 >= end {
						return
					}
				}
			}
			done := errors.New("done")
			err := c.Consume(ctx, f.topic, part, 0, kafkaio.ConsumeOptions{MaxBytes: f.maxBytes}, func(fe *kafkaio.Fetch) error {
				for r := fe.Next(); r != nil; r = fe.Next() {
					n++
					if fn != nil {
						fn(part, r.Value)
					}
				}
				if fe.Err() != nil {
					return fe.Err()
				}
				if fe.Last+1 >= end {
					return done
				}
				return nil
			})
			if err != nil && !errors.Is(err, done) {
				fail(err)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	fmt.Fprintf(stdout, "records=%d seconds=%.4f\n", total.Load(), time.Since(start).Seconds())
	return nil
}

// naiveCount is the naive counter: every value through
// encoding/json into a struct, totals in maps under one mutex.
func naiveCount(ctx context.Context, f workerFlags, stdout io.Writer) error {
	var mu sync.Mutex
	totals := map[string]map[string]int64{}
	return readAll(ctx, f, stdout, func(_ int, value []byte) {
		var v fileVote
		if err := json.Unmarshal(value, &v); err != nil || v.VoteCount != 1 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		byState := totals[v.Candidate]
		if byState == nil {
			byState = map[string]int64{}
			totals[v.Candidate] = byState
		}
		byState[v.State+"/"+v.AgeGroup]++
	})
}
