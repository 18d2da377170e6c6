package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
)

// Kafka is an Apache Kafka cluster (KRaft, every node a broker and a
// controller) on 127.0.0.1, run from the jars `make kafka-jars` copies
// into deploy/kafka/lib. Like Broker it has an Addr for NewEnv; unlike it,
// each node can be killed, paused, stopped and started on its own.
type Kafka struct {
	Addr    string // bootstrap list: every node's client listener
	Version string // "Apache Kafka 4.4.0"
	Nodes   []*KafkaNode
	opts    KafkaOptions
	lib     string // deploy/kafka/lib
	t       testing.TB
}

// KafkaNode is one node of a Kafka cluster.
type KafkaNode struct {
	testbed.KafkaNode
	Extra []string // free addresses for extra listeners (KafkaOptions.ExtraAddrs)
	Host  *Host    // the test network host it runs on, or nil for 127.0.0.1
	k     *Kafka
	mu    sync.Mutex
	proc  *Proc
}

// KafkaOptions shape a cluster. The zero value is one node with the test
// defaults below.
type KafkaOptions struct {
	Nodes int // 1 (default) or more
	// Props are server properties set on every node over the defaults.
	Props map[string]string
	// Node adjusts one node's properties before they are written (extra
	// listeners, their ports and certificates).
	Node func(n *KafkaNode, props map[string]string)
	// ExtraAddrs is how many loopback addresses each node gets in Extra,
	// for the listeners Node adds: taken with the nodes' own, so no two
	// are the same port.
	ExtraAddrs int
	// FormatArgs are extra arguments to kafka-storage format, such as
	// --add-scram for users that must exist before the first start.
	FormatArgs []string
	// Heap is the JVM's -Xmx (default 384m: three nodes fit on a small
	// machine beside the services).
	Heap string
	// Host, if set, runs every node on that host of a test network,
	// listening on its address, instead of on 127.0.0.1.
	Host *Host
	// Hosts, if set, runs node i on Hosts[i], one host each, so that one
	// node can be cut off from the others and from its clients.
	Hosts []*Host
}

// host is the test network host node i (from 0) runs on, or nil.
func (o KafkaOptions) host(i int) *Host {
	if i < len(o.Hosts) {
		return o.Hosts[i]
	}
	return o.Host
}

// RequireKafka returns the folder of the Kafka jars and java, skipping the
// test when they are missing (failing in CI, which installs them).
func RequireKafka(t testing.TB) (lib, java string) {
	t.Helper()
	java = RequireTool(t, "java")
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	lib = filepath.Join(root, "deploy", "kafka", "lib")
	if _, err := os.Stat(filepath.Join(lib, ".done")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the Kafka jars are required in CI: run make kafka-jars (%v)", err)
		}
		t.Skipf("the Kafka jars are not there: run make kafka-jars (%v)", err)
	}
	return lib, java
}

// StartKafka formats and starts a cluster and waits until every node is in
// the metadata. It is killed when the test ends.
func StartKafka(t testing.TB, opts KafkaOptions) *Kafka {
	t.Helper()
	lib, _ := RequireKafka(t)
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	if opts.Heap == "" {
		opts.Heap = "384m"
	}
	k := &Kafka{opts: opts, lib: lib, t: t, Version: kafkaVersion(lib)}
	dir := t.TempDir()
	per := 2 + opts.ExtraAddrs
	free := freeAddrs(t, opts.Nodes*per)
	for i := range opts.Nodes {
		n := &KafkaNode{KafkaNode: testbed.KafkaNode{ID: i + 1, Dir: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}, k: k}
		mine := free[i*per : (i+1)*per]
		n.Addr, n.ControllerAddr, n.Extra = mine[0], mine[1], mine[2:]
		if h := opts.host(i); h != nil {
			// The host's namespace is the test's own: every port is free.
			n.Addr, n.ControllerAddr = fmt.Sprintf("%s:%d", h.Addr, 9092+i), fmt.Sprintf("%s:%d", h.Addr, 9192+i)
		}
		n.Host = opts.host(i)
		k.Nodes = append(k.Nodes, n)
	}
	addrs := make([]string, len(k.Nodes))
	for i, n := range k.Nodes {
		addrs[i] = n.Addr
	}
	k.Addr = strings.Join(addrs, ",")
	clusterID := testbed.NewClusterID()
	var wg sync.WaitGroup
	errs := make([]error, len(k.Nodes))
	for i, n := range k.Nodes {
		if err := n.WriteConfig(n.props()); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = n.Format(lib, clusterID, opts.FormatArgs...) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range k.Nodes {
		n.Start()
	}
	// Generous: on a loaded 2-core machine three JVMs take minutes to
	// settle their quorum.
	k.WaitBrokers(len(k.Nodes), 3*time.Minute)
	t.Cleanup(func() {
		for _, n := range k.Nodes {
			n.Kill()
		}
	})
	return k
}

// freeAddrs are n loopback addresses with ports the OS just gave us, all
// different: Kafka needs its ports in its config before it starts. Take
// all a test needs in one call; two calls may give the same port.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := testbed.FreeAddrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

var kafkaJarRE = regexp.MustCompile(`^kafka_2\.13-(.+)\.jar$`)

func kafkaVersion(lib string) string {
	entries, _ := os.ReadDir(lib)
	for _, e := range entries {
		if m := kafkaJarRE.FindStringSubmatch(e.Name()); m != nil {
			return "Apache Kafka " + m[1]
		}
	}
	return "Apache Kafka"
}

// props are a node's server properties: testbed's, then the options'.
func (n *KafkaNode) props() map[string]string {
	k := n.k
	nodes := make([]testbed.KafkaNode, len(k.Nodes))
	for i, o := range k.Nodes {
		nodes[i] = o.KafkaNode
	}
	p := testbed.KafkaProps(n.KafkaNode, nodes)
	maps.Copy(p, k.opts.Props)
	if k.opts.Node != nil {
		k.opts.Node(n, p)
	}
	return p
}

// java runs one of Kafka's main classes, on the cluster's host if it has
// one.
func (n *KafkaNode) java(class string, args ...string) *exec.Cmd {
	cmd := testbed.KafkaJava(n.k.lib, n.k.opts.Heap, class, args...)
	if h := n.Host; h != nil {
		// ip execs java in the namespace: the same process, so signals
		// reach the JVM itself.
		cmd = exec.Command("ip", append([]string{"netns", "exec", h.NS}, cmd.Args...)...)
	}
	return cmd
}

// Start starts the node's process (again, after Kill or Stop) on the same
// ports and data.
func (n *KafkaNode) Start() {
	n.k.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.Exited() {
		n.k.t.Fatalf("kafka node %d is already running", n.ID)
	}
	cmd := n.java("kafka.Kafka", n.ConfigFile())
	n.proc = StartCmd(n.k.t, fmt.Sprintf("kafka-%d", n.ID), cmd)
}

func (n *KafkaNode) running() *Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Kill ends the node with SIGKILL: no controlled shutdown, no flush.
func (n *KafkaNode) Kill() {
	if p := n.running(); p != nil {
		p.Kill()
	}
}

// Stop shuts the node down cleanly (SIGTERM: leadership moves first) and
// waits for it, up to a minute.
func (n *KafkaNode) Stop() {
	n.k.t.Helper()
	if p := n.running(); p != nil {
		if err := p.Stop(time.Minute); err != nil && !isSignalExit(err) {
			n.k.t.Logf("kafka node %d stop: %v", n.ID, err)
		}
	}
}

// isSignalExit reports whether err is the JVM's exit status after SIGTERM
// (143), which is how a clean Kafka shutdown ends.
func isSignalExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return ok && (ee.ExitCode() == 143 || ee.ExitCode() == 130)
}

// Pause stops the node's process with SIGSTOP: it holds its sockets open
// and answers nothing, like a broker in a long GC pause.
func (n *KafkaNode) Pause() { n.running().Signal(syscall.SIGSTOP) }

// Resume continues a paused node.
func (n *KafkaNode) Resume() { n.running().Signal(syscall.SIGCONT) }

// Restart kills the node and starts it again.
func (n *KafkaNode) Restart() {
	n.Kill()
	n.Start()
}

// Output is what the node's process printed (Kafka logs at WARN).
func (n *KafkaNode) Output() string {
	if p := n.running(); p != nil {
		return p.Output()
	}
	return ""
}

// Node returns the node with broker id id.
func (k *Kafka) Node(id int) *KafkaNode {
	k.t.Helper()
	for _, n := range k.Nodes {
		if n.ID == id {
			return n
		}
	}
	k.t.Fatalf("no kafka node %d", id)
	return nil
}

// client is a kafka-go client of the nodes that are running, with a
// transport of its own: kafka-go answers metadata requests from a
// transport's cache, and the harness must see the cluster as it is now.
// Call the returned close when done.
func (k *Kafka) client() (*kafka.Client, func()) {
	var addrs []string
	for _, n := range k.Nodes {
		if p := n.running(); p != nil && !p.Exited() {
			addrs = append(addrs, n.Addr)
		}
	}
	tr := &kafka.Transport{DialTimeout: 3 * time.Second}
	return &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 5 * time.Second, Transport: tr}, tr.CloseIdleConnections
}

// Metadata asks the running nodes for the cluster's metadata (all topics
// when none are named).
func (k *Kafka) Metadata(ctx context.Context, topics ...string) (*kafka.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, done := k.client()
	defer done()
	return c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
}

// WaitBrokers waits until the metadata lists want brokers.
func (k *Kafka) WaitBrokers(want int, timeout time.Duration) {
	k.t.Helper()
	k.waitFor(fmt.Sprintf("%d brokers in the metadata", want), timeout, func(m *kafka.MetadataResponse) bool {
		return len(m.Brokers) == want
	})
}

// WaitHealthy waits until every node is in the metadata and every
// partition of every topic has its full set of replicas in sync and a
// leader.
func (k *Kafka) WaitHealthy(timeout time.Duration) time.Duration {
	k.t.Helper()
	d, err := k.Healthy(timeout)
	if err != nil {
		k.t.Fatal(err)
	}
	return d
}

// Healthy is WaitHealthy returning an error, for a caller that goes on.
func (k *Kafka) Healthy(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	err := k.poll("every broker up and every ISR full", timeout, func(m *kafka.MetadataResponse) bool {
		if len(m.Brokers) != len(k.Nodes) {
			return false
		}
		for _, topic := range m.Topics {
			for _, p := range topic.Partitions {
				if p.Leader.Host == "" || len(p.Isr) != len(p.Replicas) {
					return false
				}
			}
		}
		return true
	})
	return time.Since(start), err
}

func (k *Kafka) waitFor(what string, timeout time.Duration, ok func(*kafka.MetadataResponse) bool) {
	k.t.Helper()
	if err := k.poll(what, timeout, ok); err != nil {
		k.t.Fatal(err)
	}
}

// poll asks the metadata until ok, or fails after timeout with the nodes'
// last lines logged.
func (k *Kafka) poll(what string, timeout time.Duration, ok func(*kafka.MetadataResponse) bool) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		m, err := k.Metadata(context.Background())
		if err == nil && ok(m) {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			for _, n := range k.Nodes {
				k.t.Logf("--- kafka node %d:\n%s", n.ID, testbed.Tail(n.Output(), 40))
			}
			return fmt.Errorf("kafka: no %s within %s (last error: %v)", what, timeout, lastErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Leader is the broker id leading topic's partition.
func (k *Kafka) Leader(topic string, partition int) int {
	k.t.Helper()
	m, err := k.Metadata(context.Background(), topic)
	if err != nil {
		k.t.Fatalf("metadata of %s: %v", topic, err)
	}
	for _, tp := range m.Topics {
		for _, p := range tp.Partitions {
			if p.ID == partition && p.Leader.Host != "" {
				return p.Leader.ID
			}
		}
	}
	k.t.Fatalf("%s/%d has no leader", topic, partition)
	return 0
}

// Coordinator is the broker id coordinating group.
func (k *Kafka) Coordinator(group string) int {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		id, err := k.coordinator(ctx, group)
		if err == nil {
			return id
		}
		// The first lookup creates __consumer_offsets: not available yet.
		if ctx.Err() != nil || !kafkaio.Retriable(err) {
			k.t.Fatalf("coordinator of %s: %v", group, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (k *Kafka) coordinator(ctx context.Context, group string) (int, error) {
	c, done := k.client()
	defer done()
	resp, err := c.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err != nil {
		return 0, err
	}
	return int(resp.Coordinator.NodeID), nil
}

// EndOffsets asks the running nodes for the end (high watermark) of each
// of topic's partitions; a partition without a leader that answers is
// left out.
func (k *Kafka) EndOffsets(ctx context.Context, topic string, partitions int) (map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, done := k.client()
	defer done()
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error == nil {
			out[p.Partition] = p.LastOffset
		}
	}
	return out, nil
}
