package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security builds the TLS configuration (nil without KAFKA_TLS) and the SASL
// mechanism (nil without KAFKA_SASL_MECHANISM) that both the Dialer and the
// Transport use. It reads the certificate, key and password files, and
// names the variable of any file it cannot use. Its errors never contain
// the password.
func Security(cfg Config) (*tls.Config, sasl.Mechanism, error) {
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

func tlsConfig(c TLS) (*tls.Config, error) {
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

func saslMechanism(c SASL) (sasl.Mechanism, error) {
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
	name, err := SASLMechanism(c.Mechanism)
	if err != nil {
		return nil, err
	}
	algo := scram.SHA512
	switch name {
	case SASLPlain:
		return plain.Mechanism{Username: c.Username, Password: pass}, nil
	case SASLScramSHA256:
		algo = scram.SHA256
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
func warnInsecure(cfg Config, log *slog.Logger) {
	if cfg.TLS.Enabled && cfg.TLS.InsecureSkipVerify {
		log.Warn("KAFKA_TLS_INSECURE_SKIP_VERIFY=true: the brokers' certificates are not checked; anyone on the path can read and change the traffic, credentials included")
	}
	if cfg.SASL.Mechanism == SASLPlain && !cfg.TLS.Enabled {
		log.Warn("KAFKA_SASL_MECHANISM=PLAIN without KAFKA_TLS: the password crosses the network in clear")
	}
}

// authError is a failure of TLS, authentication or authorization, already
// explained in one line: retrying cannot fix it, so the services stop.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

func authf(format string, args ...any) error {
	return &authError{msg: fmt.Sprintf(format, args...)}
}

// IsAuth reports whether err is a failure of authentication, TLS
// verification or authorization, which no retry can fix.
func IsAuth(err error) bool {
	var ae *authError
	return errors.As(err, &ae) || IsDenied(err) ||
		errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kafka.UnsupportedSASLMechanism)
}

// Operations named in authorization errors, as Kafka's ACLs name them.
const (
	OpRead     = "READ"
	OpWrite    = "WRITE"
	OpDescribe = "DESCRIBE"
	OpCreate   = "CREATE"
)

// IsDenied reports whether err is the broker refusing an operation for
// lack of an ACL.
func IsDenied(err error) bool {
	for _, e := range []error{
		kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed,
		kafka.ClusterAuthorizationFailed, kafka.TransactionalIDAuthorizationFailed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Denied explains an authorization failure as the ACL that is missing:
// operation op on resource ("topic \"votes\"", "group \"vote-counter\"").
// Other errors are returned as they are.
func (c *Client) Denied(err error, op, resource string) error {
	if !IsDenied(err) {
		return err
	}
	return authf("%s may not %s %s: grant %s on %s to it with an ACL",
		c.principal(), op, resource, op, resource)
}

// principal names the Kafka user this client authenticates as.
func (c *Client) principal() string {
	switch {
	case c.cfg.SASL.Mechanism != "":
		return "User:" + c.cfg.SASL.Username
	case c.cfg.TLS.CertFile != "":
		return "the client certificate's user"
	}
	return "User:ANONYMOUS"
}

// Topic names a topic in Denied's messages.
func Topic(name string) string { return fmt.Sprintf("topic %q", name) }

// Group names a consumer group in Denied's messages.
func Group(name string) string { return fmt.Sprintf("group %q", name) }

// explainConnect turns a failure to connect (TLS, SASL, network) into one
// line a user can act on, probing the broker when the error alone cannot
// tell. It returns nil when err is not such a failure.
func (c *Client) explainConnect(ctx context.Context, err error) error {
	brokers := strings.Join(c.cfg.Brokers, ",")
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		remote    *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA):
		hint := "set KAFKA_TLS_CA_FILE to the CA that signed the brokers' certificates"
		if c.cfg.TLS.CAFile != "" {
			hint = fmt.Sprintf("KAFKA_TLS_CA_FILE (%s) is not the CA that signed them", c.cfg.TLS.CAFile)
		}
		return authf("TLS: kafka at %s has a certificate signed by an unknown authority: %s", brokers, hint)
	case errors.As(err, &hostErr):
		return authf("TLS: kafka at %s: %v: set KAFKA_TLS_SERVER_NAME to a name the certificate holds, or use that name in KAFKA_BROKERS", brokers, strings.TrimPrefix(hostErr.Error(), "x509: "))
	case errors.As(err, &invalid):
		return authf("TLS: kafka at %s has an invalid certificate: %v", brokers, strings.TrimPrefix(invalid.Error(), "x509: "))
	case errors.As(err, &header):
		return authf("TLS: kafka at %s does not speak TLS on this port: set KAFKA_TLS=false or use the brokers' TLS port", brokers)
	case errors.As(err, &remote) && remote.Op == "remote error":
		// A TLS alert from the broker, most often about our certificate.
		return authf("TLS: kafka at %s refused the handshake (%v): check KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE (a client certificate the cluster trusts)", brokers, remote.Err)
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return c.saslFailed(brokers)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return authf("SASL: kafka at %s does not enable %s: set KAFKA_SASL_MECHANISM to one it does", brokers, c.cfg.SASL.Mechanism)
	case isTimeout(err) && c.cfg.TLS.Enabled:
		// A plaintext broker waits for the rest of what it takes for a
		// request when it gets a TLS hello: no answer, no error. Which
		// timer gives up first, the request's context or the dial's read
		// deadline, is a race, so both count.
		if c.reachable(ctx) && !c.speaksTLS(ctx) {
			return authf("TLS: kafka at %s does not speak TLS on this port: set KAFKA_TLS=false or use the brokers' TLS port", brokers)
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		// Brokers close the connection on a client that fails to
		// authenticate (some without saying why) or that speaks
		// plaintext to a TLS listener: find out which.
		if !c.cfg.TLS.Enabled && c.speaksTLS(ctx) {
			return authf("kafka at %s expects TLS: set KAFKA_TLS=true", brokers)
		}
		if c.cfg.SASL.Mechanism == "" {
			return authf("kafka at %s closed the connection: it probably requires authentication: set KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE (or a client certificate)", brokers)
		}
		return c.saslFailed(brokers)
	}
	return nil
}

// isTimeout reports whether err is a context deadline or a network timeout
// (a read or dial deadline: "i/o timeout").
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) saslFailed(brokers string) error {
	return authf("SASL %s authentication as %q failed at kafka at %s: check KAFKA_SASL_USERNAME, the password (KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE) and that the user has %s credentials",
		c.cfg.SASL.Mechanism, c.cfg.SASL.Username, brokers, c.cfg.SASL.Mechanism)
}

// reachable reports whether the first broker accepts a TCP connection.
func (c *Client) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, min(c.cfg.DialTimeout, 3*time.Second))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Brokers[0])
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// speaksTLS reports whether the first broker completes a TLS handshake. It
// sends nothing else, and no credentials.
func (c *Client) speaksTLS(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, min(c.cfg.DialTimeout, 3*time.Second))
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a probe: nothing is sent
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Brokers[0])
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
