package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/votestream/votestream/pkg/kafkaio"
)

const testPassword = "s3cret-Pa55word"

func TestSecurityValidate(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string // a substring of the error; empty: valid
	}{
		{"nothing", nil, ""},
		{"tls only", []string{"KAFKA_TLS=true"}, ""},
		{"tls all", []string{"KAFKA_TLS=true", "KAFKA_TLS_CA_FILE=/ca.pem", "KAFKA_TLS_CERT_FILE=/c.pem", "KAFKA_TLS_KEY_FILE=/k.pem", "KAFKA_TLS_SERVER_NAME=kafka", "KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}, ""},
		{"tls not a bool", []string{"KAFKA_TLS=maybe"}, "KAFKA_TLS: "},
		{"skip verify not a bool", []string{"KAFKA_TLS=true", "KAFKA_TLS_INSECURE_SKIP_VERIFY=yes please"}, "KAFKA_TLS_INSECURE_SKIP_VERIFY: "},
		{"ca without tls", []string{"KAFKA_TLS_CA_FILE=/ca.pem"}, "KAFKA_TLS_CA_FILE: set but KAFKA_TLS is false"},
		{"server name without tls", []string{"KAFKA_TLS_SERVER_NAME=kafka"}, "KAFKA_TLS_SERVER_NAME: set but KAFKA_TLS is false"},
		{"skip verify without tls", []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY=true"}, "KAFKA_TLS_INSECURE_SKIP_VERIFY: set but KAFKA_TLS is false"},
		{"cert without key", []string{"KAFKA_TLS=true", "KAFKA_TLS_CERT_FILE=/c.pem"}, "KAFKA_TLS_KEY_FILE: empty but KAFKA_TLS_CERT_FILE is set"},
		{"key without cert", []string{"KAFKA_TLS=true", "KAFKA_TLS_KEY_FILE=/k.pem"}, "KAFKA_TLS_CERT_FILE: empty but KAFKA_TLS_KEY_FILE is set"},
		{"plain", []string{"KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_USERNAME=key", "KAFKA_SASL_PASSWORD=" + testPassword}, ""},
		{"scram lower case", []string{"KAFKA_SASL_MECHANISM=scram-sha-512", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD_FILE=/pw"}, ""},
		{"unknown mechanism", []string{"KAFKA_SASL_MECHANISM=GSSAPI", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD=" + testPassword}, `KAFKA_SASL_MECHANISM: "GSSAPI": must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{"no user", []string{"KAFKA_SASL_MECHANISM=SCRAM-SHA-256", "KAFKA_SASL_PASSWORD=" + testPassword}, "KAFKA_SASL_USERNAME: empty"},
		{"no password", []string{"KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_USERNAME=u"}, "KAFKA_SASL_PASSWORD: empty"},
		{"both passwords", []string{"KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD=" + testPassword, "KAFKA_SASL_PASSWORD_FILE=/pw"}, "KAFKA_SASL_PASSWORD: set together with KAFKA_SASL_PASSWORD_FILE"},
		{"user without mechanism", []string{"KAFKA_SASL_USERNAME=u"}, "KAFKA_SASL_USERNAME: set but KAFKA_SASL_MECHANISM is empty"},
		{"password without mechanism", []string{"KAFKA_SASL_PASSWORD=" + testPassword}, "KAFKA_SASL_PASSWORD: set but KAFKA_SASL_MECHANISM is empty"},
		{"password file without mechanism", []string{"KAFKA_SASL_PASSWORD_FILE=/pw"}, "KAFKA_SASL_PASSWORD_FILE: set but KAFKA_SASL_MECHANISM is empty"},
	}
	for _, tt := range tests {
		for _, svc := range []Validator{&Producer{}, &Counter{}} {
			t.Run(fmt.Sprintf("%s/%T", tt.name, svc), func(t *testing.T) {
				err := Parse(svc, tt.env)
				switch {
				case tt.want == "" && err != nil:
					t.Fatalf("got %v, want no error", err)
				case tt.want != "" && err == nil:
					t.Fatalf("got no error, want one containing %q", tt.want)
				case err != nil && !strings.Contains(err.Error(), tt.want):
					t.Errorf("got %q, want it to contain %q", err, tt.want)
				case err != nil && strings.Contains(err.Error(), testPassword):
					t.Errorf("error %q shows the password", err)
				case err != nil && strings.Contains(err.Error(), "\n"):
					t.Errorf("error %q is more than one line", err)
				}
			})
		}
	}
}

func TestMechanismNormalized(t *testing.T) {
	var c Counter
	if err := Parse(&c, []string{"KAFKA_SASL_MECHANISM=scram-sha-256", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD=p"}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Kafka.SASL.Mechanism, kafkaio.SASLScramSHA256; got != want {
		t.Errorf("got mechanism %q, want %q", got, want)
	}
}

// TestSecretNeverPrints logs and prints a whole configuration every way a
// service might; the password must not show.
func TestSecretNeverPrints(t *testing.T) {
	var c Counter
	if err := Parse(&c, []string{"KAFKA_SASL_MECHANISM=PLAIN", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD=" + testPassword}); err != nil {
		t.Fatal(err)
	}
	if got := c.Kafka.SASL.Password.Reveal(); got != testPassword {
		t.Fatalf("Reveal: got %q, want the password", got)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s\n", c, c, c, c.Kafka.SASL.Password)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", c, "kafka", c.Kafka, "password", c.Kafka.SASL.Password)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c, "kafka", c.Kafka, "password", c.Kafka.SASL.Password)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(b)
	if strings.Contains(buf.String(), testPassword) {
		t.Errorf("the password shows:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("want [redacted] in its place:\n%s", buf.String())
	}
}
