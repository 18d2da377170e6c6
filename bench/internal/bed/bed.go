// Package bed is the bench's test bed: a broker, the service binaries and
// this binary (for its workers), the topics each run gets, and the steps
// every measurement shares: start a producer or counter measured, wait
// until a counter owns its partitions or shows an exact count, and report
// rows of rates, peak RSS and CPU.
package bed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/votegen"
)

// Config is what every run on the bed shares.
type Config struct {
	Bin        string // directory with producer, counter, broker
	Seed       uint64
	Partitions int
	Timeout    time.Duration // bounds every wait
	Keep       bool          // keep the work directory
	Compress   string        // KAFKA_COMPRESSION of every producer, naive too
	MemLimit   string        // GOMEMLIMIT of votestream's producer and counter, if set
	ProfileDir string        // if set, counter runs write CPU profiles here
}

// Flags registers the flags every bench on the bed shares: -bin, -seed,
// -partitions, -timeout and -keep.
func (c *Config) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Bin, "bin", "bin", "directory holding the producer, counter and broker binaries")
	fs.Uint64Var(&c.Seed, "seed", 20241105, "SEED of every election")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions of every topic")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "bound on each step")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory (broker data, logs, state)")
}

// Bed is a broker and the runs made on it.
type Bed struct {
	Cfg    Config
	Self   string // this binary, whose sub-commands are the workers
	Work   string // the work directory
	Broker *testbed.Process
	Addr   string
	Client *kafkaio.Client
	Log    io.Writer

	// TotalVotes are the votes written to the broker, for bytes per vote.
	TotalVotes int64
	// Poll is WaitExact's period; 0 is 20 ms.
	Poll time.Duration

	topics int
}

// New is a bed on a broker at addr that the caller runs, with work as its
// work directory.
func New(cfg Config, addr, work string, log io.Writer) (*Bed, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Bed{Cfg: cfg, Self: self, Work: work, Addr: addr, Log: log}, nil
}

// Start checks the binaries, makes the work directory and starts the
// broker, with its data on disk (dataDir) so its disk use can be reported;
// stop stops the broker and removes what Keep does not keep.
func Start(cfg Config, stderr io.Writer) (b *Bed, dataDir string, stop func(), err error) {
	for _, name := range []string{"producer", "counter", "broker"} {
		if _, err := os.Stat(filepath.Join(cfg.Bin, name)); err != nil {
			return nil, "", nil, fmt.Errorf("binary %s: %w (run make build)", name, err)
		}
	}
	work, err := os.MkdirTemp("", "votestream-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	var stops []func()
	stop = func() {
		for _, f := range slices.Backward(stops) {
			f()
		}
	}
	if !cfg.Keep {
		stops = append(stops, func() { os.RemoveAll(work) })
	}
	if b, err = New(cfg, "", work, stderr); err != nil {
		stop()
		return nil, "", nil, err
	}
	dataDir = filepath.Join(work, "kfake")
	if b.Broker, err = StartProc("broker", filepath.Join(cfg.Bin, "broker"), nil,
		[]string{"BROKER_ADDR=127.0.0.1:0", "BROKER_DATA_DIR=" + dataDir}); err != nil {
		stop()
		return nil, "", nil, err
	}
	stops = append(stops, func() {
		if err := Finished(b.Broker, b.Broker.Stop(time.Minute)); err != nil {
			fmt.Fprintln(stderr, "broker:", err)
		}
	})
	if b.Addr, err = b.Broker.WaitOutput(regexp.MustCompile(`broker listening on (\S+)`), 30*time.Second); err == nil {
		// Each run's topics are new: a short metadata age lets the bench
		// read one soon after a service created it (kafka-go's default, 6 s,
		// outlasted readCheckpoints' retries now and then).
		b.Client, err = kafkaio.New(kafkaio.Config{Brokers: []string{b.Addr}, ClientID: "votestream-bench", DialTimeout: 10 * time.Second,
			MetadataMaxAge: time.Second}, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	stops = append(stops, b.Client.Close)
	return b, dataDir, stop, nil
}

// Names is one run's topics and group, unique in the broker.
type Names struct{ Topic, Ckpt, DLQ, Group string }

// NewNames makes a run's names, what it is for in each.
func (b *Bed) NewNames(what string) Names {
	b.topics++
	var r [3]byte
	_, _ = rand.Read(r[:])
	id := fmt.Sprintf("%s-%d-%s", what, b.topics, hex.EncodeToString(r[:]))
	return Names{"votes-" + id, "ckpt-" + id, "dlq-" + id, "group-" + id}
}

// Topics is how many runs have had names: one votes topic each, at most.
func (b *Bed) Topics() int { return b.topics }

// Env is a service's environment for the run named n.
func (b *Bed) Env(n Names, extra ...string) []string {
	if b.Cfg.MemLimit != "" {
		extra = append(extra, "GOMEMLIMIT="+b.Cfg.MemLimit)
	}
	return append([]string{
		"KAFKA_BROKERS=" + b.Addr, "KAFKA_TOPIC=" + n.Topic, "KAFKA_CHECKPOINT_TOPIC=" + n.Ckpt,
		"KAFKA_DLQ_TOPIC=" + n.DLQ, "GROUP_ID=" + n.Group, "KAFKA_PARTITIONS=" + strconv.Itoa(b.Cfg.Partitions),
		"HTTP_ADDR=127.0.0.1:0", "REPLICA_ID=bench", "KAFKA_COMPRESSION=" + b.Cfg.Compress,
	}, extra...)
}

// CreateTopics creates the run's topics as the services would.
func (b *Bed) CreateTopics(ctx context.Context, n Names) error {
	k := kafkaio.Config{Brokers: []string{b.Addr}, Topic: n.Topic, CheckpointTopic: n.Ckpt, DLQTopic: n.DLQ, Partitions: b.Cfg.Partitions,
		ReplicationFactor: 1, CreateTopics: true, DialTimeout: 10 * time.Second}
	c, err := kafkaio.New(k, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.EnsureTopics(ctx, kafkaio.Topics(k))
	return err
}

// StartProc runs bin measured: its peak RSS and CPU.
func StartProc(name, bin string, args, env []string) (*testbed.Process, error) {
	return testbed.Start(name, testbed.Command(bin, args, env...), testbed.Options{Measure: true})
}

// StartTree runs bin measured with its descendants, in a process group of
// its own so that KillTree ends them all.
func StartTree(name, bin string, args, env []string) (*testbed.Process, error) {
	return testbed.Start(name, testbed.Command(bin, args, env...), testbed.Options{Measure: true, Tree: true})
}

// Finished explains a process's exit error with the end of its output.
func Finished(p *testbed.Process, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %v\n%s", p.Name, err, testbed.Tail(p.Output(), 30))
}

// MustTotal is the number of votes of the election seed draws at scale.
func MustTotal(seed uint64, scale float64) int64 {
	g, err := votegen.New(votegen.Config{Seed: seed, Scale: scale})
	if err != nil {
		panic(err)
	}
	return g.Total()
}
