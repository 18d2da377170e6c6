package e2e

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/votegen"
)

// secureScale keeps each secured pipeline short: 114,650 votes.
const secureScale = 0.0005

// TestSecurePipeline runs the real producer and a counter against a broker
// that serves only TLS (a CA made here), requires SASL and enforces ACLs,
// once per mechanism. Each service has its own user with exactly the ACLs
// the README lists. With PLAIN the users may create topics and do; with
// SCRAM they may not, and use topics an admin made. The totals must be
// exact, and no password may show in any output or /metrics.
func TestSecurePipeline(t *testing.T) {
	users, run := securePipeline(t)
	run(t, StartSecureCluster(t, users...))
}

// TestKafkaSecurity is TestSecurePipeline, TestSecureFailures and
// TestMutualTLS on one Apache Kafka node (two SASL_SSL listeners, one of
// them requiring client certificates; the standard authorizer) they share,
// after the API versions check over SASL_SSL.
func TestKafkaSecurity(t *testing.T) {
	pipelineUsers, pipeline := securePipeline(t)
	failureUsers, failures := secureFailures(t)
	mtlsUser, mtls := mutualTLS(t)
	users := slices.Concat(pipelineUsers, failureUsers, []User{mtlsUser})
	start := time.Now()
	cluster, mtlsCluster := StartSecureKafka(t, users...)
	t.Logf("secured node with %d users and their ACLs up in %s", len(users), time.Since(start).Round(time.Millisecond))
	t.Run("api versions", func(t *testing.T) { testAPIVersions(t, cluster.adminConfig()) })
	t.Run("pipeline", func(t *testing.T) { pipeline(t, cluster) })
	t.Run("failures", func(t *testing.T) { failures(t, cluster) })
	t.Run("mutual TLS", func(t *testing.T) { mtls(t, mtlsCluster) })
}

// securePipeline returns the users TestSecurePipeline needs and the test,
// to run on a cluster started with them.
func securePipeline(t *testing.T) ([]User, func(*testing.T, *SecureCluster)) {
	bin := Binaries(t)
	want, err := votegen.TrueTotals(votegen.Config{Seed: testSeed, Scale: secureScale})
	if err != nil {
		t.Fatal(err)
	}
	truth := truthResults(t, votegen.Config{Seed: testSeed, Scale: secureScale})
	type run struct {
		mech               string
		create             bool
		env                Env
		producer, counters User
		web                User // ROLE=serve: READ and DESCRIBE on the checkpoints, nothing else
	}
	var runs []*run
	var users []User
	for _, mech := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		r := &run{mech: mech, create: mech == config.SASLPlain, env: NewEnv(t, &Broker{}, 4)}
		r.producer = User{Mechanism: mech, Name: "producer-" + strings.ToLower(mech), Password: RandomPassword(t), ACLs: ProducerACLs(r.env)}
		r.counters = User{Mechanism: mech, Name: "counter-" + strings.ToLower(mech), Password: RandomPassword(t), ACLs: CounterACLs(r.env)}
		if r.create {
			r.producer.ACLs = append(r.producer.ACLs, CreateACL()...)
			r.counters.ACLs = append(r.counters.ACLs, CreateACL()...)
		}
		r.web = User{Mechanism: mech, Name: "web-" + strings.ToLower(mech), Password: RandomPassword(t), ACLs: ServeACLs(r.env)}
		runs = append(runs, r)
		users = append(users, r.producer, r.counters, r.web)
	}
	return users, func(t *testing.T, cluster *SecureCluster) {
		for _, r := range runs {
			t.Run(r.mech, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				r.env.Brokers = cluster.Addr
				if !r.create {
					cluster.EnsureTopics(t, r.env)
				}
				counter := Start(t, "counter", bin.Counter, append(r.env.Vars(
					"BATCH_MAX_WAIT=200ms", "GROUP_SESSION_TIMEOUT=3s", "GROUP_REBALANCE_TIMEOUT=5s", "REPLICA_ID=a"),
					cluster.Vars(t, r.counters)...)...)
				addr := counter.MetricsAddr(t)
				web := Start(t, "web", bin.Counter, append(r.env.Vars("ROLE=serve", "REPLICA_ID=web", "SCALE="+strconv.FormatFloat(secureScale, 'g', -1, 64)),
					cluster.Vars(t, r.web)...)...)
				webAddr := web.MetricsAddr(t)
				// The producer gets its password from the environment, the
				// counter from a file: both ways must work and stay secret.
				prod := Start(t, "producer", bin.Producer, append(r.env.Vars(
					"SEED="+strconv.Itoa(testSeed), "SCALE="+strconv.FormatFloat(secureScale, 'g', -1, 64),
					"BATCH_INTERVAL=0", "VOTES_PER_BATCH=20000", "OUTPUT_DIR="+t.TempDir()),
					passwordInEnv(cluster.Vars(t, r.producer), r.producer.Password)...)...)
				if err := prod.Wait(3 * time.Minute); err != nil {
					t.Fatalf("producer: %v", err)
				}
				got := WaitCounted(t, func() []string { return []string{addr} }, r.env.Partitions, want.Total(), time.Second, 2*time.Minute)
				CheckTally(t, r.mech+": counter vs generator", &got.Tally, &want)
				for reason, n := range got.Rejected {
					if n != 0 {
						t.Errorf("rejected %d records for %s; want none", n, reason)
					}
				}
				metrics := getBody(t, "http://"+addr+"/metrics")
				if err := counter.Stop(30 * time.Second); err != nil {
					t.Errorf("counter: %v", err)
				}
				// The serving replica, with only READ and DESCRIBE on the
				// checkpoints, shows the whole election, exact.
				served := waitResults(context.Background(), t, "http://"+webAddr, want.Total(), time.Minute)
				checkResults(t, r.mech+": ROLE=serve /results", &served, &truth)
				if err := web.Stop(30 * time.Second); err != nil {
					t.Errorf("ROLE=serve: %v", err)
				}
				for _, u := range []User{r.producer, r.counters, r.web} {
					for what, out := range map[string]string{"producer": prod.Output(), "counter": counter.Output(), "web": web.Output(), "/metrics": metrics} {
						if strings.Contains(out, u.Password) {
							t.Errorf("%s's password appears in the %s output", u.Name, what)
						}
					}
				}
				if !r.create && strings.Contains(prod.Output()+counter.Output(), "topic created") {
					t.Errorf("services without CREATE created topics")
				}
				t.Logf("%s: %d votes exact in %s", r.mech, got.Tally.Total(), time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// passwordInEnv replaces KAFKA_SASL_PASSWORD_FILE with KAFKA_SASL_PASSWORD.
func passwordInEnv(vars []string, password string) []string {
	out := slices.DeleteFunc(slices.Clone(vars), func(v string) bool { return strings.HasPrefix(v, "KAFKA_SASL_PASSWORD_FILE=") })
	return append(out, "KAFKA_SASL_PASSWORD="+password)
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecureFailures gives each service a setting or a grant that cannot
// work against the secured broker. Each must exit non-zero within seconds
// with one error line that says what is wrong and how to fix it (naming the
// operation and resource for a missing ACL), and no password, right or
// wrong, may appear anywhere in its output.
func TestSecureFailures(t *testing.T) {
	users, run := secureFailures(t)
	run(t, StartSecureCluster(t, users...))
}

// secureFailures returns the users TestSecureFailures needs and the test.
func secureFailures(t *testing.T) ([]User, func(*testing.T, *SecureCluster)) {
	bin := Binaries(t)
	type tc struct {
		name string
		// producer runs the producer; otherwise the counter.
		producer bool
		// acls is the user's grant, from the test's topic and group names.
		acls func(Env) []kfake.ACL
		// setup prepares the cluster before the service starts.
		setup func(*testing.T, *SecureCluster, Env)
		// vars edits the environment that would work.
		vars func(c *SecureCluster, vars []string) []string
		want string
		// user and env are filled in below.
		user User
		env  Env
	}
	precreate := func(t *testing.T, c *SecureCluster, env Env) { c.EnsureTopics(t, env) }
	wrongPassword := func(_ *SecureCluster, vars []string) []string {
		return passwordInEnv(vars, "wrong-"+RandomPassword(t))
	}
	// votes lets the counter join and read: a producer with all rights
	// publishes a small election first.
	votes := func(t *testing.T, c *SecureCluster, env Env) {
		c.EnsureTopics(t, env)
		admin := User{Mechanism: c.Admin.Mechanism, Name: c.Admin.Name, Password: c.Admin.Password}
		p := Start(t, "producer", bin.Producer, append(env.Vars("SEED=1", "SCALE=0.00001", "BATCH_INTERVAL=0", "OUTPUT_DIR="+t.TempDir()), c.Vars(t, admin)...)...)
		if err := p.Wait(60 * time.Second); err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	cases := []*tc{
		{name: "wrong password PLAIN", acls: CounterACLs, setup: precreate, vars: wrongPassword,
			want: `SASL PLAIN authentication as "`},
		{name: "wrong password SCRAM-SHA-256", producer: true, acls: ProducerACLs, setup: precreate, vars: wrongPassword,
			want: `SASL SCRAM-SHA-256 authentication as "`},
		{name: "wrong password SCRAM-SHA-512", acls: CounterACLs, setup: precreate, vars: wrongPassword,
			want: `SASL SCRAM-SHA-512 authentication as "`},
		{name: "untrusted CA", acls: CounterACLs, setup: precreate,
			vars: func(c *SecureCluster, vars []string) []string {
				return setVar(vars, "KAFKA_TLS_CA_FILE", NewCA(t, t.TempDir(), "someone-else").File)
			},
			want: "certificate signed by an unknown authority: KAFKA_TLS_CA_FILE"},
		{name: "system roots only", producer: true, acls: ProducerACLs, setup: precreate,
			vars: func(c *SecureCluster, vars []string) []string { return setVar(vars, "KAFKA_TLS_CA_FILE", "") },
			want: "certificate signed by an unknown authority: set KAFKA_TLS_CA_FILE"},
		{name: "wrong server name", acls: CounterACLs, setup: precreate,
			vars: func(c *SecureCluster, vars []string) []string {
				return setVar(vars, "KAFKA_TLS_SERVER_NAME", "kafka.wrong.example")
			},
			want: "not kafka.wrong.example: set KAFKA_TLS_SERVER_NAME"},
		{name: "plaintext to TLS", producer: true, acls: ProducerACLs, setup: precreate,
			vars: func(c *SecureCluster, vars []string) []string {
				return setVar(setVar(vars, "KAFKA_TLS", ""), "KAFKA_TLS_CA_FILE", "")
			},
			want: "expects TLS: set KAFKA_TLS=true"},
		{name: "no SASL", acls: CounterACLs, setup: precreate,
			vars: func(c *SecureCluster, vars []string) []string {
				for _, k := range []string{"KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD_FILE"} {
					vars = setVar(vars, k, "")
				}
				return vars
			},
			want: "probably requires authentication: set KAFKA_SASL_MECHANISM"},
		{name: "unreachable", producer: true, acls: ProducerACLs,
			vars: func(c *SecureCluster, vars []string) []string { return setVar(vars, "KAFKA_BROKERS", "127.0.0.1:1") },
			want: "cannot reach kafka at 127.0.0.1:1 (KAFKA_BROKERS)"},
		{name: "topic creation denied", acls: CounterACLs,
			want: `" is not visible to User:user9, which may not create it: if it exists, grant DESCRIBE on it; if not, create the missing topics (votes-`},
		{name: "topics must exist", producer: true, acls: ProducerACLs,
			vars: func(c *SecureCluster, vars []string) []string { return setVar(vars, "KAFKA_CREATE_TOPICS", "false") },
			want: `does not exist (or User:user10 may not DESCRIBE it) and KAFKA_CREATE_TOPICS=false: create it with 4 partitions and retention.ms=-1`},
		{name: "checkpoints not compacted", acls: CounterACLs,
			setup: func(t *testing.T, c *SecureCluster, env Env) {
				c.CreateTopic(t, env.Topic, 4)
				c.CreateTopic(t, env.CheckpointTopic, 4, "cleanup.policy", "delete")
				c.CreateTopic(t, env.DLQTopic, 4)
			},
			want: `has cleanup.policy=delete: it must be compact`},
		{name: "checkpoint partitions differ", producer: true, acls: ProducerACLs,
			setup: func(t *testing.T, c *SecureCluster, env Env) {
				c.CreateTopic(t, env.Topic, 4)
				c.CreateTopic(t, env.CheckpointTopic, 3, "cleanup.policy", "compact")
				c.CreateTopic(t, env.DLQTopic, 4)
			},
			want: `has 3 partitions but "votes-`},
		{name: "no DESCRIBE on the DLQ", producer: true, setup: precreate,
			acls: func(env Env) []kfake.ACL {
				return slices.DeleteFunc(ProducerACLs(env), func(a kfake.ACL) bool { return a.Name == env.DLQTopic })
			},
			want: `is not visible to User:user13, which may not create it: if it exists, grant DESCRIBE on it; if not, create the missing topics (dlq-`},
		{name: "no WRITE on votes", producer: true, setup: precreate,
			acls: func(env Env) []kfake.ACL {
				return slices.Concat(
					Allow(kmsg.ACLResourceTypeTopic, env.Topic, kmsg.ACLOperationRead),
					Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationDescribe),
					Allow(kmsg.ACLResourceTypeTopic, env.DLQTopic, kmsg.ACLOperationDescribe))
			},
			want: `may not WRITE topic "votes-`},
		{name: "no READ on the group", setup: precreate,
			acls: func(env Env) []kfake.ACL {
				return slices.DeleteFunc(CounterACLs(env), func(a kfake.ACL) bool { return a.Resource == kmsg.ACLResourceTypeGroup })
			},
			want: `may not READ group "group-`},
		{name: "no READ on votes", setup: votes,
			acls: func(env Env) []kfake.ACL {
				return slices.Concat(
					slices.DeleteFunc(CounterACLs(env), func(a kfake.ACL) bool { return a.Name == env.Topic }),
					Allow(kmsg.ACLResourceTypeTopic, env.Topic, kmsg.ACLOperationDescribe))
			},
			want: `may not READ topic "votes-`},
		{name: "no WRITE on checkpoints", setup: votes,
			acls: func(env Env) []kfake.ACL {
				return slices.Concat(
					slices.DeleteFunc(CounterACLs(env), func(a kfake.ACL) bool { return a.Name == env.CheckpointTopic }),
					Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationRead))
			},
			want: `may not WRITE topic "ckpt-`},
		{name: "ROLE=serve without READ on checkpoints", setup: precreate,
			acls: func(env Env) []kfake.ACL {
				return Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationDescribe)
			},
			vars: func(_ *SecureCluster, vars []string) []string { return append(vars, "ROLE=serve") },
			want: `may not READ topic "ckpt-`},
	}
	mechs := []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512}
	var users []User
	for i, c := range cases {
		c.env = NewEnv(t, &Broker{}, 4)
		mech := mechs[i%len(mechs)]
		if m, ok := strings.CutPrefix(c.name, "wrong password "); ok {
			mech = m
		}
		c.user = User{Mechanism: mech, Name: "user" + strconv.Itoa(i), Password: RandomPassword(t), ACLs: c.acls(c.env)}
		users = append(users, c.user)
	}
	return users, func(t *testing.T, cluster *SecureCluster) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				c.env.Brokers = cluster.Addr
				if c.setup != nil {
					c.setup(t, cluster, c.env)
				}
				vars := append(c.env.Vars("KAFKA_DIAL_TIMEOUT=5s", "OUTPUT_DIR="+t.TempDir(), "SCALE=0.00001", "GROUP_SESSION_TIMEOUT=3s"), cluster.Vars(t, c.user)...)
				if c.vars != nil {
					vars = c.vars(cluster, vars)
				}
				name, path := "counter", bin.Counter
				if c.producer {
					name, path = "producer", bin.Producer
				}
				start := time.Now()
				p := Start(t, name, path, vars...)
				err := p.Wait(30 * time.Second)
				took := time.Since(start)
				out := p.Output()
				if err == nil {
					t.Fatalf("exited 0; want a failure. Output:\n%s", out)
				}
				if took > 15*time.Second {
					t.Errorf("took %s to fail; want seconds", took.Round(time.Millisecond))
				}
				var errLines []string
				for _, l := range Lines(out) {
					if !strings.Contains(l, "level=INFO") && !strings.Contains(l, "level=WARN") {
						errLines = append(errLines, l)
					}
				}
				if len(errLines) != 1 || !strings.Contains(errLines[0], c.want) {
					t.Errorf("want one error line containing %q, got:\n%s", c.want, out)
				}
				for _, v := range vars {
					if pw, ok := strings.CutPrefix(v, "KAFKA_SASL_PASSWORD="); ok && strings.Contains(out, pw) {
						t.Errorf("the password given appears in the output:\n%s", out)
					}
				}
				if strings.Contains(out, c.user.Password) {
					t.Errorf("the user's password appears in the output:\n%s", out)
				}
				t.Logf("%s in %s", errLines, took.Round(time.Millisecond))
			})
		}
	}
}

// setVar sets (or, with an empty value, removes) key in vars.
func setVar(vars []string, key, value string) []string {
	out := slices.DeleteFunc(slices.Clone(vars), func(v string) bool { return strings.HasPrefix(v, key+"=") })
	if value != "" {
		out = append(out, key+"="+value)
	}
	return out
}

// TestMutualTLS runs a counter against a broker that requires a client
// certificate: with one signed by the cluster's CA it joins its group and
// stops cleanly; without one it exits at once saying which settings to set.
func TestMutualTLS(t *testing.T) {
	user, run := mutualTLS(t)
	run(t, StartMTLSCluster(t, user))
}

// mutualTLS returns the user TestMutualTLS needs and the test.
func mutualTLS(t *testing.T) (User, func(*testing.T, *SecureCluster)) {
	env := NewEnv(t, &Broker{}, 2)
	user := User{Mechanism: config.SASLScramSHA256, Name: "mtls-counter", Password: RandomPassword(t), ACLs: slices.Concat(CounterACLs(env), CreateACL())}
	return user, func(t *testing.T, cluster *SecureCluster) { testMutualTLS(t, cluster, env, user) }
}

func testMutualTLS(t *testing.T, cluster *SecureCluster, env Env, user User) {
	bin := Binaries(t)
	env.Brokers = cluster.Addr
	certFile, keyFile := SaveKeyPair(t, t.TempDir(), "client", cluster.CA.Issue(t, "counter", nil, nil, true))
	vars := append(env.Vars("KAFKA_DIAL_TIMEOUT=5s", "GROUP_SESSION_TIMEOUT=3s"), cluster.Vars(t, user)...)

	t.Run("with a client certificate", func(t *testing.T) {
		p := Start(t, "counter", bin.Counter, append(vars, "KAFKA_TLS_CERT_FILE="+certFile, "KAFKA_TLS_KEY_FILE="+keyFile)...)
		p.WaitOutput(t, reMatch(`msg="partitions restored"`), 30*time.Second)
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("counter: %v", err)
		}
	})
	t.Run("without", func(t *testing.T) {
		p := Start(t, "counter", bin.Counter, vars...)
		if err := p.Wait(20 * time.Second); err == nil {
			t.Fatalf("exited 0; want a failure:\n%s", p.Output())
		}
		out := p.Output()
		if want := "check KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE"; !strings.Contains(out, want) {
			t.Errorf("want an error containing %q, got:\n%s", want, out)
		}
		if strings.Contains(out, user.Password) {
			t.Errorf("the password appears in the output:\n%s", out)
		}
		t.Log(lastLine(out, "counter:"))
	})
}

// TestTLSToPlaintext points a service with KAFKA_TLS=true at the local
// plaintext broker: it must say the port does not speak TLS.
func TestTLSToPlaintext(t *testing.T) {
	bin := Binaries(t)
	env := NewEnv(t, StartBroker(t), 1)
	p := Start(t, "producer", bin.Producer, env.Vars("KAFKA_TLS=true", "KAFKA_DIAL_TIMEOUT=2s", "OUTPUT_DIR="+t.TempDir())...)
	if err := p.Wait(20 * time.Second); err == nil {
		t.Fatalf("exited 0; want a failure:\n%s", p.Output())
	}
	if want := "does not speak TLS on this port: set KAFKA_TLS=false"; !strings.Contains(p.Output(), want) {
		t.Errorf("want an error containing %q, got:\n%s", want, p.Output())
	}
}
