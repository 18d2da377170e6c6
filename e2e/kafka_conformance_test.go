package e2e

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/votestream/votestream/internal/testbed"
	"github.com/votestream/votestream/pkg/kafkaio"
	"github.com/votestream/votestream/pkg/votegen"
)

// testAPIVersions pings cfg's cluster at debug level: the line of API
// versions kafka-go uses must list every API votestream sends and none
// without a common version (Kafka 4 dropped old versions, KIP-896).
// TestKafkaSecurity runs it on its node, over SASL_SSL.
func testAPIVersions(t *testing.T, cfg kafkaio.Config) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := kafkaio.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`msg="kafka api versions".*`).FindString(buf.String())
	t.Log(line)
	for _, api := range []string{"SaslHandshake", "SaslAuthenticate", "Produce", "Fetch", "ListOffsets", "Metadata", "JoinGroup", "OffsetCommit", "CreateTopics"} {
		if !regexp.MustCompile(`[" ]` + api + `=v\d+`).MatchString(line) {
			t.Errorf("no version of %s in %q", api, line)
		}
	}
	if !strings.Contains(line, `no_common_version=""`) {
		t.Errorf("APIs without a common version: %q", line)
	}
}

// TestRunKafka runs `make run BROKER=kafka`'s script on ports of its own: it
// formats a local Apache Kafka node in ./.kafka-data, the counter counts
// the producer's election exactly, and Ctrl-C stops everything, Kafka last.
func TestRunKafka(t *testing.T) {
	RequireKafka(t)
	bin := Binaries(t)
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := votegen.TrueTotals(votegen.Config{Seed: testSeed, Scale: 0.0005})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addrs := freeAddrs(t, 3)
	brokerAddr, counterAddr, controllerAddr := addrs[0], addrs[1], addrs[2]
	cmd := exec.Command(filepath.Join(root, "deploy", "local", "run.sh"))
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "BIN=" + filepath.Dir(bin.Producer),
		"BROKER=kafka", "BROKER_ADDR=" + brokerAddr, "KAFKA_CONTROLLER_ADDR=" + controllerAddr,
		"COUNTER_HTTP_ADDR=" + counterAddr, "PRODUCER_HTTP_ADDR=127.0.0.1:0",
		"SEED=" + strconv.Itoa(testSeed), "SCALE=0.0005", "BATCH_INTERVAL=0",
	}
	run := StartCmd(t, "run.sh", cmd)
	// Registered after StartCmd's kill, so it runs first: a failed test
	// still stops the Kafka node the script started in its own session.
	t.Cleanup(func() {
		if !run.Exited() {
			run.Signal(syscall.SIGINT)
			_ = run.Wait(time.Minute)
		}
	})
	run.WaitOutput(t, regexp.MustCompile(`every vote is published`), 4*time.Minute)
	if !strings.Contains(run.Output(), "Apache Kafka ") {
		t.Errorf("run.sh did not say it started Apache Kafka:\n%s", testbed.Tail(run.Output(), 20))
	}
	got := WaitCounted(t, func() []string { return []string{counterAddr} }, 12, want.Total(), time.Second, 2*time.Minute)
	CheckTally(t, "counter vs generator", &got.Tally, &want)

	run.Signal(syscall.SIGINT)
	if err := run.Wait(time.Minute); err != nil {
		t.Fatalf("run.sh after Ctrl-C: %v\n%s", err, testbed.Tail(run.Output(), 20))
	}
	if c, err := net.DialTimeout("tcp", brokerAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("Kafka still listens on %s after run.sh stopped", brokerAddr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".kafka-data", "logs", "meta.properties")); err != nil {
		t.Errorf("no formatted ./.kafka-data: %v", err)
	}
}
