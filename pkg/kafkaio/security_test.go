package kafkaio

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"
)

const testPassword = "s3cret-Pa55word"

// selfSigned writes a self-signed certificate and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	writeFile(t, notPEM, "hello")

	t.Run("off", func(t *testing.T) {
		tc, mech, err := Security(Config{})
		if tc != nil || mech != nil || err != nil {
			t.Errorf("got %v, %v, %v; want nothing", tc, mech, err)
		}
	})
	t.Run("system roots", func(t *testing.T) {
		tc, _, err := Security(Config{TLS: TLS{Enabled: true}})
		if err != nil {
			t.Fatal(err)
		}
		if tc.RootCAs != nil || tc.InsecureSkipVerify || tc.MinVersion != tls.VersionTLS12 || len(tc.Certificates) != 0 {
			t.Errorf("got %+v; want system roots, verification, TLS 1.2 or later, no client certificate", tc)
		}
	})
	t.Run("all", func(t *testing.T) {
		tc, _, err := Security(Config{TLS: TLS{
			Enabled: true, CAFile: cert, CertFile: cert, KeyFile: key, ServerName: "kafka.example", InsecureSkipVerify: true,
		}})
		if err != nil {
			t.Fatal(err)
		}
		if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka.example" || !tc.InsecureSkipVerify {
			t.Errorf("got %+v; want the CA, the client certificate, the server name and skip-verify", tc)
		}
	})
	for _, tt := range []struct {
		name string
		tls  TLS
		want string
	}{
		{"missing CA", TLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem")}, "KAFKA_TLS_CA_FILE: open "},
		{"CA not PEM", TLS{Enabled: true, CAFile: notPEM}, "KAFKA_TLS_CA_FILE: " + notPEM + ": no PEM certificate in it"},
		{"missing key", TLS{Enabled: true, CertFile: cert, KeyFile: filepath.Join(dir, "nope.key")}, "KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE: "},
		{"key not PEM", TLS{Enabled: true, CertFile: cert, KeyFile: notPEM}, "KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Security(Config{TLS: tt.tls})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSecuritySASL(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	writeFile(t, pwFile, testPassword+"\n")
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")

	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			_, m, err := Security(Config{SASL: SASL{Mechanism: mech, Username: "u", Password: testPassword}})
			if err != nil {
				t.Fatal(err)
			}
			if m.Name() != mech {
				t.Errorf("got mechanism %s, want %s", m.Name(), mech)
			}
		})
	}
	t.Run("password file", func(t *testing.T) {
		_, m, err := Security(Config{SASL: SASL{Mechanism: SASLPlain, Username: "u", PasswordFile: pwFile}})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.(plain.Mechanism).Password; got != testPassword {
			t.Errorf("got password %q, want the file's without its newline", got)
		}
	})
	for _, tt := range []struct {
		name string
		sasl SASL
		want string
	}{
		{"missing file", SASL{Mechanism: SASLPlain, Username: "u", PasswordFile: filepath.Join(dir, "nope")}, "KAFKA_SASL_PASSWORD_FILE: open "},
		{"empty file", SASL{Mechanism: SASLScramSHA512, Username: "u", PasswordFile: empty}, "KAFKA_SASL_PASSWORD_FILE: " + empty + " is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Security(Config{SASL: tt.sasl})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestNewSharesSecurity checks the consumer groups' Dialer and the
// Transport get the same TLS and SASL, and that New warns about the
// settings that weaken them without showing the password.
func TestNewSharesSecurity(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{
		Brokers: []string{"kafka:9093"}, DialTimeout: time.Second,
		TLS:  TLS{Enabled: true, InsecureSkipVerify: true},
		SASL: SASL{Mechanism: SASLScramSHA512, Username: "u", Password: testPassword},
	}
	c, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.kc.Transport.(*kafka.Transport)
	if c.dialer.TLS == nil || c.dialer.TLS != tr.TLS {
		t.Errorf("Dialer TLS %p, Transport TLS %p: want the same config", c.dialer.TLS, tr.TLS)
	}
	if c.dialer.SASLMechanism == nil || c.dialer.SASLMechanism != tr.SASL {
		t.Errorf("Dialer SASL %v, Transport SASL %v: want the same mechanism", c.dialer.SASLMechanism, tr.SASL)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "KAFKA_TLS_INSECURE_SKIP_VERIFY") {
		t.Errorf("want a warning about KAFKA_TLS_INSECURE_SKIP_VERIFY, got:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), testPassword) {
		t.Errorf("the password shows in the log:\n%s", logs.String())
	}

	_, err = New(Config{TLS: TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, log)
	if err == nil || !strings.HasPrefix(err.Error(), "config: KAFKA_TLS_CA_FILE: ") {
		t.Errorf("got %v, want a config error naming KAFKA_TLS_CA_FILE", err)
	}
}

// TestTLSToPlaintextEitherTimeout gives explainConnect both errors a TLS
// client can get from a plaintext broker that never answers its hello: the
// request's context deadline and the connection's read deadline. Which one
// a service sees is a race between two timers; both must say the port does
// not speak TLS.
func TestTLSToPlaintextEitherTimeout(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]

	cfg := Config{Brokers: []string{addr}, DialTimeout: time.Second}
	cfg.TLS.Enabled = true
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for name, cause := range map[string]error{
		"context deadline": fmt.Errorf("metadata: %w", context.DeadlineExceeded),
		"read deadline":    readTimeout(t, addr),
	} {
		t.Run(name, func(t *testing.T) {
			got := c.explainConnect(t.Context(), cause)
			if want := "does not speak TLS on this port"; got == nil || !strings.Contains(got.Error(), want) {
				t.Errorf("explainConnect(%v) = %v; want an error containing %q", cause, got, want)
			}
		})
	}
}

// readTimeout returns the error of a real read from addr that hits its
// deadline: "read tcp ...: i/o timeout".
func readTimeout(t *testing.T, addr string) error {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v; want a deadline error", err)
	}
	return err
}
