// Command configdoc writes the configuration reference from pkg/config's
// source: go generate ./pkg/config (or make docs) runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/votestream/votestream/internal/configdoc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("configdoc", flag.ContinueOnError)
	dir := fl.String("dir", ".", "the config package's source directory")
	out := fl.String("o", "", "the Markdown file to write")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o: the file to write is missing")
	}
	groups, err := configdoc.Read(os.DirFS(*dir))
	if err != nil {
		return fmt.Errorf("read %s: %w", *dir, err)
	}
	return os.WriteFile(*out, configdoc.Markdown(groups), 0o644)
}
