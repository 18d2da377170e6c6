// Package deploy_test checks the deployment files statically, since no
// Docker engine or cluster runs where the tests do: the compose file loads
// with the compose-spec library and sets only variables the services read,
// the Dockerfile builds what compose asks of it, Prometheus accepts its
// configuration and rules (promtool), and the Kubernetes manifests agree
// with the services too.
package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/votestream/votestream/deploy/promserver"
	"github.com/votestream/votestream/pkg/config"
)

// root is the repository root, where docker-compose.yml and go.mod are.
const root = ".."

// services maps each service we build to a fresh copy of its config.
var services = map[string]func() config.Validator{
	"producer": func() config.Validator { return new(config.Producer) },
	"counter":  func() config.Validator { return new(config.Counter) },
	"web":      func() config.Validator { return new(config.Counter) },
}

// envNames returns every variable cfg reads, nested structs included.
func envNames(t *testing.T, cfg any) map[string]bool {
	t.Helper()
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		t.Fatalf("env.GetFieldParams(%T): %v", cfg, err)
	}
	names := make(map[string]bool, len(params))
	for _, p := range params {
		names[p.Key] = true
	}
	// A guard on the reflection itself: nested structs must be walked.
	for _, want := range []string{"KAFKA_BROKERS", "LOG_LEVEL", "HTTP_ADDR"} {
		if !names[want] {
			t.Fatalf("%T: env.GetFieldParams found no %s; got %v", cfg, want, params)
		}
	}
	return names
}

// checkEnv fails t for each variable the service does not read, and for a
// set of values its config rejects.
func checkEnv(t *testing.T, svc string, vars map[string]string) {
	t.Helper()
	newCfg, ok := services[svc]
	if !ok {
		t.Fatalf("no config struct known for service %q", svc)
	}
	known := envNames(t, newCfg())
	var environ []string
	for k, v := range vars {
		if !known[k] {
			t.Errorf("%s: sets %s, which %T does not read", svc, k, newCfg())
		}
		environ = append(environ, k+"="+v)
	}
	if err := config.Parse(newCfg(), environ); err != nil {
		t.Errorf("%s: its environment does not parse: %v", svc, err)
	}
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		// The file must not depend on the caller's environment or a .env.
		cli.WithEnv(nil),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return project
}

func TestCompose(t *testing.T) {
	project := loadCompose(t)
	want := []string{"redpanda", "init", "producer", "counter", "web", "nginx", "prometheus", "grafana"}
	for _, name := range want {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}

	t.Run("images and builds", func(t *testing.T) {
		for name, svc := range project.Services {
			switch {
			case svc.Build != nil:
				checkBuild(t, name, svc.Build)
			case svc.Image != "":
				checkPinned(t, name, svc.Image)
			default:
				t.Errorf("%s: neither image nor build", name)
			}
		}
	})

	for _, name := range []string{"counter", "web"} {
		t.Run(name+" scales", func(t *testing.T) {
			c := project.Services[name]
			if c.ContainerName != "" {
				t.Errorf("%s: container_name %q stops --scale", name, c.ContainerName)
			}
			for _, p := range c.Ports {
				if p.Published != "" {
					t.Errorf("%s: host port %s would clash between replicas", name, p.Published)
				}
			}
			if c.Scale != nil && *c.Scale < 1 {
				t.Errorf("%s: scale %d", name, *c.Scale)
			}
		})
	}

	t.Run("roles", func(t *testing.T) {
		for name, want := range map[string]string{"counter": config.RoleCount, "web": config.RoleServe} {
			if got := deref(project.Services[name].Environment["ROLE"]); got != want {
				t.Errorf("%s: ROLE=%q, want %q", name, got, want)
			}
		}
		counter, web := project.Services["counter"], project.Services["web"]
		if counter.Image != web.Image || counter.Build == nil || web.Build == nil || counter.Build.Target != web.Build.Target {
			t.Errorf("web: image %q (target %v), want the counter's %q", web.Image, web.Build, counter.Image)
		}
		for _, k := range []string{"SCALE", "INCLUDE_DC", "ELECTION", "KAFKA_CHECKPOINT_TOPIC"} {
			if got, want := deref(web.Environment[k]), deref(counter.Environment[k]); got != want {
				t.Errorf("web: %s=%q, the counter's is %q", k, got, want)
			}
		}
	})

	t.Run("nginx", func(t *testing.T) {
		n := project.Services["nginx"]
		if !slices.ContainsFunc(n.Ports, func(p types.ServicePortConfig) bool {
			return p.Published == "8000" && p.Target == 8000 && p.HostIP == "127.0.0.1"
		}) {
			t.Errorf("nginx: ports %+v, want 127.0.0.1:8000:8000", n.Ports)
		}
		abs, err := filepath.Abs(root)
		if err != nil {
			t.Fatal(err)
		}
		mounts := map[string]string{}
		for _, v := range n.Volumes {
			rel, _ := filepath.Rel(abs, v.Source)
			mounts[v.Target] = filepath.ToSlash(rel)
		}
		for target, src := range map[string]string{"/etc/nginx/nginx.conf": "deploy/nginx/nginx.conf", "/etc/nginx/conf.d": "deploy/nginx/conf.d"} {
			if mounts[target] != src {
				t.Errorf("nginx: %s mounted from %q, want %s", target, mounts[target], src)
			}
		}
		if _, ok := n.DependsOn["web"]; !ok {
			t.Error("nginx: does not depend on web, whose replicas its upstreams name")
		}
		// Non-root on a read-only root: nginx writes its cache and temp
		// files and its pid file only to tmpfs, the cache's owned by it.
		if n.User != "101:101" || !n.ReadOnly || !slices.Contains(n.CapDrop, "ALL") {
			t.Errorf("nginx: user %q, read_only %v, cap_drop %v: want 101:101 (the image's nginx), true, [ALL]", n.User, n.ReadOnly, n.CapDrop)
		}
		if !slices.Contains(n.Tmpfs, "/var/cache/nginx:uid=101,gid=101") || !slices.Contains(n.Tmpfs, "/tmp") ||
			!strings.Contains(strings.Join(n.Command, " "), "pid /tmp/nginx.pid;") {
			t.Errorf("nginx: tmpfs %v, command %v: want /var/cache/nginx owned by 101 and /tmp, the pid file in /tmp", n.Tmpfs, n.Command)
		}
		site, err := os.ReadFile(filepath.Join(root, "deploy/nginx/conf.d/votestream.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(site, []byte("server web:9102 ")) || !bytes.Contains(site, []byte("listen 8000;")) {
			t.Error("deploy/nginx/conf.d/votestream.conf: its upstreams are not web:9102 or it does not listen on 8000")
		}
	})

	t.Run("environment", func(t *testing.T) {
		for name := range services {
			svc := project.Services[name]
			vars := map[string]string{}
			for k, v := range svc.Environment {
				if v == nil {
					t.Errorf("%s: %s has no value: it would come from the host's environment", name, k)
					continue
				}
				vars[k] = *v
			}
			checkEnv(t, name, vars)
		}
	})

	t.Run("topics", func(t *testing.T) {
		// The init service creates what the services expect to find.
		init := project.Services["init"]
		for name := range services {
			svc := project.Services[name]
			for _, k := range []string{"KAFKA_TOPIC", "KAFKA_CHECKPOINT_TOPIC", "KAFKA_DLQ_TOPIC", "KAFKA_PARTITIONS", "KAFKA_REPLICATION_FACTOR"} {
				if got, want := deref(init.Environment[k]), deref(svc.Environment[k]); got != want {
					t.Errorf("init creates %s=%q, %s uses %q", k, got, name, want)
				}
			}
			if got := deref(svc.Environment["KAFKA_CREATE_TOPICS"]); got != "false" {
				t.Errorf("%s: KAFKA_CREATE_TOPICS=%q; init creates the topics", name, got)
			}
			dep, ok := svc.DependsOn["init"]
			if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s: must depend on init with condition service_completed_successfully, got %+v", name, dep)
			}
		}
		script, err := os.ReadFile(filepath.Join(root, "deploy/redpanda/create-topics.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"retention.ms=-1", "cleanup.policy=compact", "$CHECKPOINT_TOPIC", "$DLQ_TOPIC"} {
			if !bytes.Contains(script, []byte(want)) {
				t.Errorf("create-topics.sh: no %q", want)
			}
		}
	})

	t.Run("ports", func(t *testing.T) {
		seen := map[string]string{}
		for name, svc := range project.Services {
			for _, p := range svc.Ports {
				if p.Published == "" {
					continue
				}
				if _, err := strconv.ParseUint(p.Published, 10, 16); err != nil {
					t.Errorf("%s: published port %q is not one port", name, p.Published)
				}
				if p.HostIP != "127.0.0.1" {
					t.Errorf("%s: port %s published on %q; bind it to 127.0.0.1 (Grafana is open to anonymous viewers)", name, p.Published, p.HostIP)
				}
				if other, ok := seen[p.Published]; ok {
					t.Errorf("host port %s published by both %s and %s", p.Published, other, name)
				}
				seen[p.Published] = name
			}
		}
		for _, want := range []string{"3000", "9090", "8000"} {
			if seen[want] == "" {
				t.Errorf("nothing publishes host port %s, which the README promises", want)
			}
		}
		// Prometheus finds the services on the ports they listen on.
		for name, port := range map[string]string{"producer": "9101", "counter": "9102", "web": "9102"} {
			if got := deref(project.Services[name].Environment["HTTP_ADDR"]); got != ":"+port {
				t.Errorf("%s: HTTP_ADDR=%q, Prometheus scrapes :%s", name, got, port)
			}
		}
	})

	t.Run("volumes", func(t *testing.T) {
		for name, svc := range project.Services {
			targets := map[string]bool{}
			for _, v := range svc.Volumes {
				if targets[v.Target] {
					t.Errorf("%s: two volumes at %s", name, v.Target)
				}
				targets[v.Target] = true
				switch v.Type {
				case types.VolumeTypeBind:
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s: bind source: %v", name, err)
					}
					if !v.ReadOnly {
						t.Errorf("%s: bind mount %s is writable; mount configuration read-only", name, v.Source)
					}
				case types.VolumeTypeVolume:
					if _, ok := project.Volumes[v.Source]; !ok {
						t.Errorf("%s: named volume %q not declared", name, v.Source)
					}
				}
			}
		}
	})

	t.Run("restart policies", func(t *testing.T) {
		// Back after a reboot: Redpanda, and a counter that exits 0 on
		// SIGTERM. The producer exits 0 when done and must stay down then.
		for name, want := range map[string]string{"redpanda": "unless-stopped", "counter": "unless-stopped", "producer": "on-failure"} {
			if got := project.Services[name].Restart; got != want {
				t.Errorf("%s: restart %q, want %q", name, got, want)
			}
		}
	})

	t.Run("header comment", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var header []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#") {
				break
			}
			header = append(header, l)
		}
		text := strings.Join(header, "\n")
		for _, path := range regexp.MustCompile(`[\w./-]+\.(?:md|go|yml|yaml)\b`).FindAllString(text, -1) {
			if _, err := os.Stat(filepath.Join(root, path)); err != nil {
				t.Errorf("the header cites %s: %v", path, err)
			}
		}
		for _, l := range header {
			if strings.Contains(l, "--scale counter=") && !strings.Contains(l, "--no-recreate") {
				t.Errorf("header: %q: without --no-recreate, scaling restarts the running counters", l)
			}
		}
	})

	t.Run("prometheus discovers the services", func(t *testing.T) {
		var cfg struct {
			ScrapeConfigs []struct {
				JobName      string `yaml:"job_name"`
				DNSSDConfigs []struct {
					Names []string `yaml:"names"`
					Type  string   `yaml:"type"`
					Port  int      `yaml:"port"`
				} `yaml:"dns_sd_configs"`
				RelabelConfigs []struct {
					SourceLabels []string `yaml:"source_labels"`
					Action       string   `yaml:"action"`
					TargetLabel  string   `yaml:"target_label"`
					Replacement  string   `yaml:"replacement"`
				} `yaml:"relabel_configs"`
			} `yaml:"scrape_configs"`
		}
		readYAML(t, filepath.Join(root, "deploy/prometheus/prometheus.yml"), &cfg)
		want := map[string]int{"counter": 9102, "producer": 9101, "web": 9102}
		for _, sc := range cfg.ScrapeConfigs {
			port, ok := want[sc.JobName]
			if !ok {
				continue
			}
			delete(want, sc.JobName)
			if len(sc.DNSSDConfigs) != 1 || !slices.Equal(sc.DNSSDConfigs[0].Names, []string{sc.JobName}) ||
				sc.DNSSDConfigs[0].Type != "A" || sc.DNSSDConfigs[0].Port != port {
				t.Errorf("job %s: want dns_sd_configs names [%s] type A port %d, got %+v", sc.JobName, sc.JobName, port, sc.DNSSDConfigs)
			}
			// The labels the rules and the dashboard read, set outright.
			set := map[string]string{}
			for _, r := range sc.RelabelConfigs {
				if len(r.SourceLabels) == 0 && (r.Action == "" || r.Action == "replace") {
					set[r.TargetLabel] = r.Replacement
				}
			}
			if set["namespace"] != "votestream" || set["app_kubernetes_io_name"] != sc.JobName {
				t.Errorf("job %s: relabel_configs set %v; want namespace votestream and app_kubernetes_io_name %s", sc.JobName, set, sc.JobName)
			}
		}
		for job := range want {
			t.Errorf("prometheus.yml: no job %q", job)
		}
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// checkPinned fails t for an image without a version tag or digest.
func checkPinned(t *testing.T, svc, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	if !ok || tag == "" || tag == "latest" {
		t.Errorf("%s: image %q is not pinned to a version", svc, image)
	}
}

// checkBuild fails t unless the build's Dockerfile exists, has the target
// stage compose asks for, and that stage builds a package that exists.
func checkBuild(t *testing.T, svc string, b *types.BuildConfig) {
	t.Helper()
	if st, err := os.Stat(b.Context); err != nil || !st.IsDir() {
		t.Errorf("%s: build context %q: not a directory (%v)", svc, b.Context, err)
		return
	}
	path := b.Dockerfile
	if !filepath.IsAbs(path) {
		path = filepath.Join(b.Context, path)
	}
	df := parseDockerfile(t, path)
	if b.Target == "" {
		t.Errorf("%s: build has no target; %s has one per service", svc, path)
		return
	}
	if _, ok := df.stages[b.Target]; !ok {
		t.Errorf("%s: target %q is no stage of %s", svc, b.Target, path)
	}
}

type dockerfile struct {
	stages map[string]string // stage name -> FROM image
	lines  []string          // instructions, continuations joined
	args   map[string]string // ARG defaults
}

func parseDockerfile(t *testing.T, path string) *dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{stages: map[string]string{}, args: map[string]string{}}
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		df.lines = append(df.lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, l := range df.lines {
		fields := strings.Fields(l)
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if k, v, ok := strings.Cut(fields[1], "="); ok {
				df.args[k] = v
			}
		case "FROM":
			if len(fields) == 4 && strings.EqualFold(fields[2], "AS") {
				df.stages[fields[3]] = os.Expand(fields[1], func(k string) string { return df.args[k] })
			}
		}
	}
	return df
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t, filepath.Join(root, "deploy/docker/Dockerfile"))

	// The builder's Go must be at least go.mod's: golang images set
	// GOTOOLCHAIN=local and refuse a newer module.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	needGo := string(m[1])
	builders := 0
	for stage, from := range df.stages {
		repo, tag, _ := strings.Cut(from, ":")
		switch {
		case repo == "golang":
			builders++
			v := tag
			if i := strings.IndexByte(v, '-'); i >= 0 {
				v = v[:i]
			}
			if len(strings.Split(v, ".")) != 3 {
				t.Errorf("stage %s: golang:%s is not pinned to a patch release", stage, tag)
			}
			if versionLess(v, needGo) {
				t.Errorf("stage %s: golang:%s is older than go.mod's go %s", stage, tag, needGo)
			}
		case strings.HasPrefix(repo, "gcr.io/distroless/static"):
			if !strings.Contains(tag, "nonroot") && !strings.Contains(from, "@sha256:") {
				t.Errorf("stage %s: runtime %s: use the nonroot variant", stage, from)
			}
		case strings.Contains(repo, "/") || strings.Contains(repo, "."):
			t.Errorf("stage %s: unexpected base image %s", stage, from)
		}
	}
	if builders != 1 {
		t.Errorf("want one golang builder stage, got %d: %v", builders, df.stages)
	}

	// One final stage per service, each building its package statically.
	for target, pkg := range map[string]string{"producer": "./producer", "counter": "./counter", "broker": "./deploy/broker"} {
		if _, ok := df.stages[target]; !ok {
			t.Errorf("no stage %q", target)
		}
		if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
			t.Errorf("stage %s builds %s: %v", target, pkg, err)
		}
		built := false
		for _, l := range df.lines {
			if strings.Contains(l, "go build") && strings.HasSuffix(strings.TrimSpace(l), " "+pkg) {
				built = true
				if !strings.Contains(l, "CGO_ENABLED=0") {
					t.Errorf("%s is built without CGO_ENABLED=0: %s", pkg, l)
				}
			}
		}
		if !built {
			t.Errorf("no `go build ... %s` in the Dockerfile", pkg)
		}
	}
	users := 0
	for _, l := range df.lines {
		if f := strings.Fields(l); strings.ToUpper(f[0]) == "USER" {
			users++
			if uid, _, _ := strings.Cut(f[1], ":"); uid == "0" || uid == "root" {
				t.Errorf("runs as root: %s", l)
			} else if _, err := strconv.Atoi(uid); err != nil {
				t.Errorf("USER %s: use a numeric UID so Kubernetes' runAsNonRoot can verify it", f[1])
			}
		}
	}
	if users == 0 {
		t.Error("no USER: the runtime image would run as root")
	}
}

// versionLess reports a < b for dotted numeric versions.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.26.8", "1.26.8", false},
		{"1.26.7", "1.26.8", true},
		{"1.26.10", "1.26.8", false},
		{"1.26", "1.26.1", true},
		{"1.27.0", "1.26.8", false},
	} {
		if got := versionLess(tc.a, tc.b); got != tc.want {
			t.Errorf("versionLess(%s, %s): got %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// promtool runs promtool with args from deploy/prometheus, bounded.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		promserver.MissingTool(t, "promtool")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Join(root, "deploy/prometheus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestPromtool(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"check rules", []string{"check", "rules", "alerts.yml"}},
		{"test rules", []string{"test", "rules", "alerts_test.yml"}},
	} {
		t.Run(tc.name, func(t *testing.T) { promtool(t, tc.args...) })
	}
}

// TestAlertsCovered keeps the unit tests honest: every alert has a test
// that expects it to fire.
func TestAlertsCovered(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join(root, "deploy/prometheus/alerts.yml"), &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(root, "deploy/prometheus/alerts_test.yml"), &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s: no test expects it to fire", r.Alert)
			}
		}
	}
	if n < 4 {
		t.Errorf("got %d alerts, want at least 4 (counter down, lag growing, no progress, rejected records)", n)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestMakefileFragment checks the targets the README documents.
func TestMakefileFragment(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy/compose.mk"))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"up", "down", "scale", "logs", "deploy-check"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(b) {
			t.Errorf("compose.mk: no target %s", target)
		}
	}
	if !bytes.Contains(b, []byte("--scale counter=$(N)")) {
		t.Error("compose.mk: scale does not pass --scale counter=$(N)")
	}
}
