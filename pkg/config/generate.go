package config

// The configuration reference is made from this package's env tags,
// defaults and doc comments: a setting documented here is documented there.
//go:generate go run ../../internal/cmd/configdoc -o ../../docs/configuration.md
