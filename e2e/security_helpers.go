package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/votestream/votestream/pkg/config"
	"github.com/votestream/votestream/pkg/kafkaio"
)

// CA is a certificate authority made for one test, its certificate saved
// as PEM in File.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	File string
}

// NewCA makes a CA named name and writes its certificate under dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{cert: cert, key: key, File: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Issue signs a certificate for the given DNS names and IPs, for a server
// or a client.
func (ca *CA) Issue(t testing.TB, cn string, dns []string, ips []net.IP, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		IPAddresses:  ips,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// SaveKeyPair writes a certificate and its key as PEM files under dir.
func SaveKeyPair(t testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", der)
	return certFile, keyFile
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// User is a SASL user of a SecureCluster with the ACLs it is granted.
type User struct {
	Mechanism, Name, Password string
	ACLs                      []kfake.ACL
}

// Allow grants ops on one resource (a literal name).
func Allow(res kmsg.ACLResourceType, name string, ops ...kmsg.ACLOperation) []kfake.ACL {
	out := make([]kfake.ACL, len(ops))
	for i, op := range ops {
		out[i] = kfake.ACL{Resource: res, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	return out
}

// SecureCluster is an in-process kfake broker that serves TLS only, with a
// certificate for 127.0.0.1 and localhost signed by CA, requires SASL and
// enforces ACLs. Admin is a superuser (SCRAM-SHA-512).
type SecureCluster struct {
	Addr  string
	CA    *CA
	Admin User
	dir   string
}

// StartSecureCluster starts the broker with users, and closes it when the
// test ends.
func StartSecureCluster(t testing.TB, users ...User) *SecureCluster {
	t.Helper()
	return startSecureCluster(t, false, users...)
}

// StartMTLSCluster is StartSecureCluster whose broker also requires a
// client certificate signed by CA (SASL still names the user).
func StartMTLSCluster(t testing.TB, users ...User) *SecureCluster {
	t.Helper()
	return startSecureCluster(t, true, users...)
}

func startSecureCluster(t testing.TB, mtls bool, users ...User) *SecureCluster {
	t.Helper()
	dir := t.TempDir()
	ca := NewCA(t, dir, "votestream-test-ca")
	cert := ca.Issue(t, "kafka", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, false)
	c := &SecureCluster{CA: ca, dir: dir, Admin: User{Mechanism: config.SASLScramSHA512, Name: "admin", Password: RandomPassword(t)}}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mtls {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = x509.NewCertPool()
		tc.ClientCAs.AddCert(ca.cert)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.TLS(tc),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser(c.Admin.Mechanism, c.Admin.Name, c.Admin.Password),
		kfake.GroupMinSessionTimeout(time.Second),
	}
	for _, u := range users {
		opts = append(opts, kfake.User(u.Mechanism, u.Name, u.Password, u.ACLs...))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)
	c.Addr = cluster.ListenAddrs()[0]
	return c
}

// RandomPassword returns a password unlikely to appear by chance in any
// output, so a test can assert it never does.
func RandomPassword(t testing.TB) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b[:])
}

// Vars is the environment with which u reaches the cluster over TLS,
// trusting its CA, the password passed in a file.
func (c *SecureCluster) Vars(t testing.TB, u User) []string {
	t.Helper()
	f, err := os.CreateTemp(c.dir, "password-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, u.Password+"\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return []string{
		"KAFKA_TLS=true",
		"KAFKA_TLS_CA_FILE=" + c.CA.File,
		"KAFKA_SASL_MECHANISM=" + u.Mechanism,
		"KAFKA_SASL_USERNAME=" + u.Name,
		"KAFKA_SASL_PASSWORD_FILE=" + f.Name(),
	}
}

// AdminClient is a superuser client built with votestream's own config.
func (c *SecureCluster) AdminClient(t testing.TB) *kafkaio.Client {
	t.Helper()
	client, err := kafkaio.New(c.adminConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// CreateTopic creates a topic as the superuser, with config entries
// ("cleanup.policy", "compact", ...).
func (c *SecureCluster) CreateTopic(t testing.TB, name string, partitions int, configs ...string) {
	t.Helper()
	tc := kafka.TopicConfig{Topic: name, NumPartitions: partitions, ReplicationFactor: 1}
	for i := 0; i+1 < len(configs); i += 2 {
		tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: configs[i], ConfigValue: configs[i+1]})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.AdminClient(t).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}})
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	if err := res.Errors[name]; err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// EnsureTopics creates env's topics as the superuser, with the shapes
// votestream needs, so that users without CREATE find them.
func (c *SecureCluster) EnsureTopics(t testing.TB, env Env) {
	t.Helper()
	cfg := c.adminConfig()
	cfg.Topic, cfg.CheckpointTopic, cfg.DLQTopic, cfg.Partitions, cfg.CreateTopics = env.Topic, env.CheckpointTopic, env.DLQTopic, env.Partitions, true
	client, err := kafkaio.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client.EnsureTopics(ctx, kafkaio.Topics(cfg)); err != nil {
		t.Fatalf("create topics as admin: %v", err)
	}
}

func (c *SecureCluster) adminConfig() config.Kafka {
	return config.Kafka{
		Brokers: []string{c.Addr}, ClientID: "test-admin", DialTimeout: 10 * time.Second, Partitions: 1, ReplicationFactor: 1,
		TLS:  config.TLS{Enabled: true, CAFile: c.CA.File},
		SASL: config.SASL{Mechanism: c.Admin.Mechanism, Username: c.Admin.Name, Password: config.Secret(c.Admin.Password)},
	}
}

// ProducerACLs are what the README tells users to grant the producer: it
// writes the votes and reads their ends to resume, and checks the other
// topics exist.
func ProducerACLs(env Env) []kfake.ACL {
	return slices.Concat(
		Allow(kmsg.ACLResourceTypeTopic, env.Topic, kmsg.ACLOperationWrite, kmsg.ACLOperationRead, kmsg.ACLOperationDescribeConfigs),
		Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs),
		Allow(kmsg.ACLResourceTypeTopic, env.DLQTopic, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs),
	)
}

// CounterACLs are what the README tells users to grant the counters.
func CounterACLs(env Env) []kfake.ACL {
	return slices.Concat(
		Allow(kmsg.ACLResourceTypeTopic, env.Topic, kmsg.ACLOperationRead, kmsg.ACLOperationDescribeConfigs),
		Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribeConfigs),
		Allow(kmsg.ACLResourceTypeTopic, env.DLQTopic, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribeConfigs),
		Allow(kmsg.ACLResourceTypeGroup, env.Group, kmsg.ACLOperationRead),
	)
}

// ServeACLs are what docs/serving.md tells users to grant a ROLE=serve
// replica: it reads the checkpoints and nothing else.
func ServeACLs(env Env) []kfake.ACL {
	return Allow(kmsg.ACLResourceTypeTopic, env.CheckpointTopic, kmsg.ACLOperationRead, kmsg.ACLOperationDescribe)
}

// CreateACL lets a user create topics.
func CreateACL() []kfake.ACL {
	return Allow(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationCreate)
}
