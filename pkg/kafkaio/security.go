package kafkaio

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/votestream/votestream/pkg/config"
)

// Security builds the TLS configuration (nil without KAFKA_TLS) and the SASL
// mechanism (nil without KAFKA_SASL_MECHANISM) that both the Dialer and the
// Transport use. It reads the certificate, key and password files, and
// names the variable of any file it cannot use. Its errors never contain
// the password.
func Security(cfg config.Kafka) (*tls.Config, sasl.Mechanism, error) {
	tc, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	mech, err := saslMechanism(cfg.SASL)
	if err != nil {
		return nil, nil, err
	}
	return tc, mech, nil
}

func tlsConfig(c config.TLS) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // explicit opt-in, warned about at start
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			// tls's messages are about PEM blocks; say which files.
			return nil, fmt.Errorf("KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE: %s, %s: %v", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func saslMechanism(c config.SASL) (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	pass := c.Password.Reveal()
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_SASL_PASSWORD_FILE: %w", err)
		}
		// Secrets mounted from files often end with a newline.
		pass = strings.TrimRight(string(b), "\r\n")
		if pass == "" {
			return nil, fmt.Errorf("KAFKA_SASL_PASSWORD_FILE: %s is empty", c.PasswordFile)
		}
	}
	var algo scram.Algorithm
	switch c.Mechanism {
	case config.SASLPlain:
		return plain.Mechanism{Username: c.Username, Password: pass}, nil
	case config.SASLScramSHA256:
		algo = scram.SHA256
	case config.SASLScramSHA512:
		algo = scram.SHA512
	default:
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: %q: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.Mechanism)
	}
	m, err := scram.Mechanism(algo, c.Username, pass)
	if err != nil {
		// xdg-go/scram fails only on names or passwords SASLprep rejects;
		// its message does not quote them.
		return nil, fmt.Errorf("KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: %s cannot use them: %v", c.Mechanism, err)
	}
	return m, nil
}

// warnInsecure logs the settings that weaken security, once at start.
func warnInsecure(cfg config.Kafka, log *slog.Logger) {
	if cfg.TLS.Enabled && cfg.TLS.InsecureSkipVerify {
		log.Warn("KAFKA_TLS_INSECURE_SKIP_VERIFY=true: the brokers' certificates are not checked; anyone on the path can read and change the traffic, credentials included")
	}
	if cfg.SASL.Mechanism == config.SASLPlain && !cfg.TLS.Enabled {
		log.Warn("KAFKA_SASL_MECHANISM=PLAIN without KAFKA_TLS: the password crosses the network in clear")
	}
}

// errAuth marks errors of authentication or authorization: retrying cannot
// fix them, so the services stop with them.
var errAuth = errors.New("not authorized")

// IsAuth reports whether err is a failure of authentication, TLS
// verification or authorization, which no retry can fix.
func IsAuth(err error) bool { return errors.Is(err, errAuth) || fatal(err) }
