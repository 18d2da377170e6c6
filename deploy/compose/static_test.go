// Package compose_test checks the Apache Kafka override of the compose stack:
// statically here (compose-spec library, every `go test`), and under a real
// Docker Engine in stack_test.go (`make compose-test` only).
package compose_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository root, the compose project's directory.
const root = "../.."

// files are the compose files of the Apache Kafka stack, base first.
var files = []string{filepath.Join(root, "docker-compose.yml"), filepath.Join(root, "deploy/compose/apache-kafka.yml")}

// load loads files as Compose would, with profiles active.
func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(root), cli.WithProfiles(profiles),
		cli.WithEnv([]string{"ELECTION=seed"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return p
}

// TestApacheKafkaOverride: the override runs Kafka where Redpanda was and
// nothing of Redpanda's, Grafana only when asked.
func TestApacheKafkaOverride(t *testing.T) {
	p := load(t)
	got := p.ServiceNames()
	slices.Sort(got)
	if want := []string{"counter", "init", "kafka", "nginx", "producer", "prometheus", "web"}; !slices.Equal(got, want) {
		t.Errorf("services: got %v, want %v", got, want)
	}
	for name, svc := range p.Services {
		for dep := range svc.DependsOn {
			if _, ok := p.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which this stack does not run", name, dep)
			}
		}
	}
	for _, name := range []string{"producer", "counter", "web"} {
		svc := p.Services[name]
		if b := svc.Environment["KAFKA_BROKERS"]; b == nil || *b != "kafka:9092" {
			t.Errorf("%s: KAFKA_BROKERS = %v, want kafka:9092", name, b)
		}
		if svc.DependsOn["kafka"].Condition != types.ServiceConditionHealthy ||
			svc.DependsOn["init"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: depends_on %v: want kafka healthy and init completed", name, svc.DependsOn)
		}
	}
	init := p.Services["init"]
	if _, ok := init.Environment["RPK_BROKERS"]; ok {
		t.Errorf("init keeps Redpanda's environment: %v", init.Environment)
	}
	if len(init.Volumes) != 1 || init.Volumes[0].Source != mustAbs(t, filepath.Join(root, "deploy/kafka/create-topics.sh")) {
		t.Errorf("init volumes %+v: want only deploy/kafka/create-topics.sh", init.Volumes)
	}
	if g := load(t, "grafana"); g.Services["grafana"].Name == "" {
		t.Error("COMPOSE_PROFILES=grafana does not bring Grafana back")
	}
}

// TestKafkaImageVersion: the override's apache/kafka is the version whose
// jars `make kafka-jars` fetches, so the test runs what users get.
func TestKafkaImageVersion(t *testing.T) {
	pom, err := os.ReadFile(filepath.Join(root, "deploy/kafka/pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(pom)
	if m == nil {
		t.Fatal("deploy/kafka/pom.xml: no kafka.version")
	}
	p := load(t)
	for _, name := range []string{"kafka", "init"} {
		if got, want := p.Services[name].Image, "apache/kafka:"+string(m[1]); got != want {
			t.Errorf("%s: image %s, want %s", name, got, want)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
