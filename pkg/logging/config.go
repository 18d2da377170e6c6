package logging

import (
	"fmt"
	"strings"
)

// Config chooses how a service logs.
type Config struct {
	// Format is text or json.
	Format string `env:"LOG_FORMAT" envDefault:"text"`
	// Level is debug, info, warn or error; at debug the start-up check also
	// logs the Kafka API versions kafka-go uses with the broker.
	Level string `env:"LOG_LEVEL" envDefault:"info"`
}

// Validate reports a format or level slog does not know.
func (l *Config) Validate() error {
	if l.Format != "text" && l.Format != "json" {
		return fmt.Errorf("LOG_FORMAT: %q: must be text or json", l.Format)
	}
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("LOG_LEVEL: %q: must be debug, info, warn or error", l.Level)
}
