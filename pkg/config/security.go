package config

import (
	"errors"
	"fmt"
	"strings"
)

// TLS is how a service encrypts and authenticates its connections to the
// brokers. Every file is PEM.
type TLS struct {
	// Enabled connects to the brokers over TLS.
	Enabled bool `env:"KAFKA_TLS" envDefault:"false"`
	// CAFile holds the certificates that may sign the brokers'; empty
	// trusts the system's roots (enough for most hosted clusters).
	CAFile string `env:"KAFKA_TLS_CA_FILE"`
	// CertFile is this client's certificate, for clusters that
	// authenticate clients by certificate (mTLS); needs KeyFile.
	CertFile string `env:"KAFKA_TLS_CERT_FILE"`
	// KeyFile is the key of CertFile.
	KeyFile string `env:"KAFKA_TLS_KEY_FILE"`
	// ServerName is the name the brokers' certificates must carry; empty
	// means the host of each broker address.
	ServerName string `env:"KAFKA_TLS_SERVER_NAME"`
	// InsecureSkipVerify accepts any certificate: for debugging only (it
	// logs a warning).
	InsecureSkipVerify bool `env:"KAFKA_TLS_INSECURE_SKIP_VERIFY" envDefault:"false"`
}

// Validate reports the first TLS setting that cannot work.
func (t *TLS) Validate() error {
	if !t.Enabled {
		for _, v := range []struct{ name, value string }{
			{"KAFKA_TLS_CA_FILE", t.CAFile}, {"KAFKA_TLS_CERT_FILE", t.CertFile},
			{"KAFKA_TLS_KEY_FILE", t.KeyFile}, {"KAFKA_TLS_SERVER_NAME", t.ServerName},
		} {
			if v.value != "" {
				return fmt.Errorf("%s: set but KAFKA_TLS is false: set KAFKA_TLS=true to use TLS", v.name)
			}
		}
		if t.InsecureSkipVerify {
			return errors.New("KAFKA_TLS_INSECURE_SKIP_VERIFY: set but KAFKA_TLS is false: set KAFKA_TLS=true to use TLS")
		}
		return nil
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return errors.New("KAFKA_TLS_KEY_FILE: empty but KAFKA_TLS_CERT_FILE is set: mTLS needs both")
	case t.KeyFile != "" && t.CertFile == "":
		return errors.New("KAFKA_TLS_CERT_FILE: empty but KAFKA_TLS_KEY_FILE is set: mTLS needs both")
	}
	return nil
}

// SASL mechanisms votestream speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLMechanism is the one rule for KAFKA_SASL_MECHANISM: it returns the
// mechanism's canonical (upper case) name, or an error if votestream does
// not speak it.
func SASLMechanism(name string) (string, error) {
	switch m := strings.ToUpper(name); m {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		return m, nil
	}
	return "", fmt.Errorf("KAFKA_SASL_MECHANISM: %q: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", name)
}

// SASL is how a service authenticates to the brokers by user name and
// password. The password comes from KAFKA_SASL_PASSWORD or, better, from a
// file (a mounted secret) named by KAFKA_SASL_PASSWORD_FILE.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables
	// SASL.
	Mechanism string `env:"KAFKA_SASL_MECHANISM"`
	// Username is the user (Confluent Cloud: the API key).
	Username string `env:"KAFKA_SASL_USERNAME"`
	// Password is the user's password (Confluent Cloud: the API secret);
	// never logged. Set it or PasswordFile, not both.
	Password Secret `env:"KAFKA_SASL_PASSWORD"`
	// PasswordFile names a file holding the password (a mounted secret; a
	// trailing newline is dropped).
	PasswordFile string `env:"KAFKA_SASL_PASSWORD_FILE"`
}

// Validate reports the first SASL setting that cannot work. It never
// quotes the password.
func (s *SASL) Validate() error {
	if s.Mechanism == "" {
		switch {
		case s.Username != "":
			return errors.New("KAFKA_SASL_USERNAME: set but KAFKA_SASL_MECHANISM is empty: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		case s.Password != "":
			return errors.New("KAFKA_SASL_PASSWORD: set but KAFKA_SASL_MECHANISM is empty: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		case s.PasswordFile != "":
			return errors.New("KAFKA_SASL_PASSWORD_FILE: set but KAFKA_SASL_MECHANISM is empty: set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil
	}
	mech, err := SASLMechanism(s.Mechanism)
	if err != nil {
		return err
	}
	s.Mechanism = mech
	switch {
	case s.Username == "":
		return fmt.Errorf("KAFKA_SASL_USERNAME: empty: %s needs a user name (Confluent Cloud: the API key)", s.Mechanism)
	case s.Password != "" && s.PasswordFile != "":
		return errors.New("KAFKA_SASL_PASSWORD: set together with KAFKA_SASL_PASSWORD_FILE: set only one")
	case s.Password == "" && s.PasswordFile == "":
		return fmt.Errorf("KAFKA_SASL_PASSWORD: empty: %s needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE", s.Mechanism)
	}
	return nil
}

// Secret is a string that never prints: fmt, slog and encoders see
// [redacted], so logging a configuration cannot leak it.
type Secret string

const redacted = "[redacted]"

// String hides the secret from fmt's %s and %v.
func (Secret) String() string { return redacted }

// GoString hides the secret from fmt's %#v.
func (Secret) GoString() string { return redacted }

// MarshalText hides the secret from JSON and text encoders, slog's
// included.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// validateSecurity checks the TLS and SASL settings of a Kafka config.
func (k *Kafka) validateSecurity() error {
	if err := k.TLS.Validate(); err != nil {
		return err
	}
	return k.SASL.Validate()
}
