package config

// The configuration reference is made from the env tags, defaults and doc
// comments of this package and of the adapters' settings it embeds
// (kafkaio.Config, logging.Config): a setting documented here is documented
// there.
//go:generate go run ../../internal/cmd/configdoc -o ../../docs/configuration.md
