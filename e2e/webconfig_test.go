package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/votestream/votestream/deploy/promserver"
	"github.com/votestream/votestream/pkg/votegen"
)

// webConfig writes an exporter-toolkit web configuration under dir: TLS
// with a certificate for 127.0.0.1 signed by a new CA, and basic auth for
// user with password (stored as a bcrypt hash). It returns the file and
// the CA's certificate file.
func webConfig(t *testing.T, dir, user, password string) (file, caFile string) {
	t.Helper()
	ca := NewCA(t, dir, "http-ca")
	cert, key := SaveKeyPair(t, dir, "http", ca.Issue(t, "votestream", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, false))
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "web-config.yml")
	text := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n", cert, key, user, hash)
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, ca.File
}

// TestHTTPTLSBasicAuth serves both services' HTTP ports over TLS with
// basic auth from one web configuration file, which promtool accepts: a
// real Prometheus scrapes the counter with the password, another job with
// a wrong password is refused, and neither password appears in any
// output. The count stays exact.
func TestHTTPTLSBasicAuth(t *testing.T) {
	bin := Binaries(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		promserver.MissingTool(t, "promtool")
	}
	dir := t.TempDir()
	password, wrong := RandomPassword(t), RandomPassword(t)
	file, caFile := webConfig(t, dir, "scraper", password)
	if out, err := exec.Command(promtool, "check", "web-config", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check web-config: %v\n%s", err, out)
	}
	broker := StartBroker(t)
	env := NewEnv(t, broker, 4)
	cfg := votegen.Config{Seed: testSeed + 12, Scale: 0.0002}
	want, err := votegen.TrueTotals(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counter := Start(t, "counter", bin.Counter, env.Vars("SCALE=0.0002", "HTTP_WEB_CONFIG_FILE="+file)...)
	addr := counter.MetricsAddr(t)
	prod := Start(t, "producer", bin.Producer, env.Vars("SEED="+strconv.Itoa(testSeed+12), "SCALE=0.0002",
		"VOTES_PER_BATCH=500", "BATCH_INTERVAL=200ms", "OUTPUT_DIR=", "HTTP_WEB_CONFIG_FILE="+file)...)
	prodAddr := prod.MetricsAddr(t)

	client := httpsClient(t, caFile)
	for _, tc := range []struct {
		what, addr, user, pass string
		status                 int
	}{
		{"counter, no auth", addr, "", "", http.StatusUnauthorized},
		{"counter, wrong password", addr, "scraper", wrong, http.StatusUnauthorized},
		{"counter, unknown user", addr, "nobody", password, http.StatusUnauthorized},
		{"counter", addr, "scraper", password, http.StatusOK},
		{"producer, wrong password", prodAddr, "scraper", wrong, http.StatusUnauthorized},
		{"producer", prodAddr, "scraper", password, http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+tc.addr+"/metrics", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || strings.Contains(string(body), password) || strings.Contains(string(body), wrong) {
			t.Errorf("%s: %s, want %d (and no password in the reply)", tc.what, res.Status, tc.status)
		}
	}
	// Plain HTTP to the TLS port is refused.
	if res, err := http.Get("http://" + addr + "/metrics"); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP got /metrics from a TLS port")
		}
	}

	passFile, wrongFile := filepath.Join(dir, "password"), filepath.Join(dir, "wrong")
	os.WriteFile(passFile, []byte(password), 0o600)
	os.WriteFile(wrongFile, []byte(wrong), 0o600)
	job := func(name, pwFile string) string {
		return fmt.Sprintf("  - job_name: %s\n    scheme: https\n    tls_config:\n      ca_file: %s\n    basic_auth:\n      username: scraper\n      password_file: %s\n    static_configs:\n      - targets: [%q]\n",
			name, caFile, pwFile, addr)
	}
	prom := promserver.StartJobs(t, job("counter", passFile)+job("intruder", wrongFile), []string{addr})
	if err := prod.Wait(2 * time.Minute); err != nil {
		t.Fatalf("producer: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := prom.Query(t, `sum(max_over_time(votestream_votes{job="counter"}[1m]))`)
		if got == float64(want.Total()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus over TLS and basic auth: %v votes, want %d", got, want.Total())
		}
		time.Sleep(time.Second)
	}
	states, err := prom.ScrapeStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		t.Logf("job %s: %s %q", s.Job, s.Health, s.LastError)
		if s.Job == "intruder" && (s.Health == "up" || !strings.Contains(s.LastError, "401")) {
			t.Errorf("the job with the wrong password: %s %q, want down with 401", s.Health, s.LastError)
		}
		if strings.Contains(s.LastError, password) || strings.Contains(s.LastError, wrong) {
			t.Errorf("a password in Prometheus' scrape error: %q", s.LastError)
		}
	}
	if err := counter.Stop(30 * time.Second); err != nil {
		t.Errorf("counter: %v", err)
	}
	for _, p := range []*Proc{counter, prod} {
		if out := p.Output(); strings.Contains(out, password) || strings.Contains(out, wrong) {
			t.Errorf("%s printed a password", p.Name)
		}
	}
}

// httpsClient trusts the CA in caFile.
func httpsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestHTTPWebConfigBad starts each service with a missing and with a bad
// web configuration file: it must stop at once, with one line naming
// HTTP_WEB_CONFIG_FILE.
func TestHTTPWebConfigBad(t *testing.T) {
	bin := Binaries(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("basic_auth_users:\n  scraper: not-a-bcrypt-hash\n"), 0o600)
	for _, svc := range []struct{ name, bin string }{{"counter", bin.Counter}, {"producer", bin.Producer}} {
		for _, file := range []string{filepath.Join(dir, "missing.yml"), bad} {
			cmd := exec.Command(svc.bin)
			cmd.Env = []string{"KAFKA_BROKERS=127.0.0.1:1", "HTTP_ADDR=127.0.0.1:0", "HTTP_WEB_CONFIG_FILE=" + file}
			out, err := cmd.CombinedOutput()
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if err == nil || !strings.Contains(last, "HTTP_WEB_CONFIG_FILE") || strings.Contains(string(out), "panic") {
				t.Errorf("%s with %s: %v, last line %q; want a non-zero exit naming HTTP_WEB_CONFIG_FILE", svc.name, filepath.Base(file), err, last)
			}
			t.Logf("%s, %s: %s", svc.name, filepath.Base(file), last)
		}
	}
}
