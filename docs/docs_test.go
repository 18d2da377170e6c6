// Package docs holds votestream's documentation and the tests that keep it
// true: the configuration reference is the one the config structs generate,
// every relative link and anchor resolves, and every image exists.
package docs

import (
	"bytes"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/votestream/votestream/internal/configdoc"
)

// TestConfigurationGenerated fails when docs/configuration.md is not what
// the env tags, defaults and doc comments of pkg/config and the adapters'
// settings it embeds make, or when a setting
// has no doc comment to make it from.
func TestConfigurationGenerated(t *testing.T) {
	groups, err := configdoc.Read(configdoc.Sources("../pkg")...)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) == 0 {
		t.Fatal("no settings found in pkg/config")
	}
	if missing := configdoc.Undocumented(groups); len(missing) > 0 {
		t.Errorf("settings without a doc comment in pkg/config:\n  %s", strings.Join(missing, "\n  "))
	}
	want := configdoc.Markdown(groups)
	got, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/configuration.md differs from what pkg/config generates (first difference: %s): run make docs", firstDiff(got, want))
	}
}

// firstDiff names the first line where a and b differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, x, y)
		}
	}
	return "none"
}

// pages are the Markdown files the checks read: the README and docs/*.md.
func pages(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	return files
}

// A link is one [text](target) or ![alt](target) outside code, or an
// <img src="...">.
type link struct {
	target string
	image  bool
	line   int
}

var (
	inlineLink = regexp.MustCompile(`(!?)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)`)
	imgTag     = regexp.MustCompile(`<img\s[^>]*src="([^"]+)"`)
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// links reads every link of a Markdown text, skipping fenced code and code
// spans.
func links(text string) []link {
	var out []link
	for i, l := range prose(text) {
		l = codeSpan.ReplaceAllString(l, "")
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			out = append(out, link{target: m[2], image: m[1] == "!", line: i + 1})
		}
		if m := refDef.FindStringSubmatch(l); m != nil {
			out = append(out, link{target: m[1], line: i + 1})
		}
		for _, m := range imgTag.FindAllStringSubmatch(l, -1) {
			out = append(out, link{target: m[1], image: true, line: i + 1})
		}
	}
	return out
}

// anchors are the anchors GitHub gives a Markdown text's headings (and its
// explicit <a name> or <a id>).
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose(text) {
		for _, m := range htmlAnchor.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
		h := strings.TrimLeft(l, "#")
		if len(h) == len(l) || len(l)-len(h) > 6 || (h != "" && h[0] != ' ') {
			continue
		}
		slug := Slug(h)
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// prose yields the lines of a Markdown text outside fenced code, with their
// index.
func prose(text string) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		fence := ""
		for i, l := range strings.Split(text, "\n") {
			trim := strings.TrimSpace(l)
			if fence != "" {
				if strings.HasPrefix(trim, fence) {
					fence = ""
				}
				continue
			}
			if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
				fence = trim[:3]
				continue
			}
			if !yield(i, l) {
				return
			}
		}
	}
}

var mdLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// Slug is GitHub's anchor of a heading: its text lower-cased, Markdown
// links reduced to their text, everything but letters, digits, spaces,
// hyphens and underscores dropped, spaces made hyphens.
func Slug(heading string) string {
	h := mdLink.ReplaceAllString(strings.TrimSpace(heading), "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Election night 2024: `ELECTION=2024`":                "election-night-2024-election2024",
		"Beside Spark and Kafka Streams (`make bench-peers`)": "beside-spark-and-kafka-streams-make-bench-peers",
		"What fails, and how it says so":                      "what-fails-and-how-it-says-so",
		"See [design](design.md) — why":                       "see-design--why",
	} {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestLinkReader checks the reader on a text with every kind of link, and
// the anchors GitHub gives repeated and decorated headings.
func TestLinkReader(t *testing.T) {
	text := "# Top\n\nSee [a](a.md#x-y), ![pic](images/p.png \"t\") and `[not](code.md)`.\n" +
		"```\n[not](fenced.md)\n```\n[ref]: ../b.md\n<img src=\"c.png\" alt=\"\">\n## X y\n## X y\n"
	var got []string
	for _, l := range links(text) {
		got = append(got, fmt.Sprintf("%s %v", l.target, l.image))
	}
	want := []string{"a.md#x-y false", "images/p.png true", "../b.md false", "c.png true"}
	if !slices.Equal(got, want) {
		t.Errorf("links: got %q, want %q", got, want)
	}
	a := anchors(text)
	for _, name := range []string{"top", "x-y", "x-y-1"} {
		if !a[name] {
			t.Errorf("anchors: no %q in %v", name, a)
		}
	}
	if a["not"] || len(a) != 3 {
		t.Errorf("anchors: %v", a)
	}
}

// TestLinks checks that every relative link of README.md and docs/*.md
// names a file that exists and, with #anchor, a heading of that file.
func TestLinks(t *testing.T) {
	texts := map[string]string{}
	read := func(path string) (string, error) {
		path = filepath.Clean(path)
		if s, ok := texts[path]; ok {
			return s, nil
		}
		b, err := os.ReadFile(path)
		texts[path] = string(b)
		return string(b), err
	}
	checked := 0
	for _, page := range pages(t) {
		text, err := read(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(text) {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			checked++
			where := fmt.Sprintf("%s:%d: %s", page, l.line, l.target)
			file, anchor, _ := strings.Cut(l.target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(path, ".md") {
				t.Errorf("%s: an anchor into a file that is not Markdown", where)
				continue
			}
			target, err := read(path)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !anchors(target)[anchor] {
				t.Errorf("%s: no heading of %s has the anchor #%s", where, path, anchor)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: the link reader is broken", checked)
	}
}

// maxImage bounds a committed picture's size.
const maxImage = 400 << 10

// TestImages checks that every image the docs show exists, is a PNG, JPEG
// or SVG and is at most maxImage bytes; and that every PNG under images/ is
// shown somewhere, so none is left behind.
func TestImages(t *testing.T) {
	used := map[string]bool{}
	for _, page := range pages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(text)) {
			if !l.image || strings.Contains(l.target, "://") {
				continue
			}
			path := filepath.Clean(filepath.Join(filepath.Dir(page), l.target))
			abs, _ := filepath.Abs(path)
			used[abs] = true
			fi, err := os.Stat(path)
			switch {
			case err != nil:
				t.Errorf("%s:%d: %v", page, l.line, err)
			case fi.Size() > maxImage:
				t.Errorf("%s:%d: %s is %d KiB, over %d KiB", page, l.line, path, fi.Size()>>10, maxImage>>10)
			case !slices.Contains([]string{".png", ".jpg", ".svg"}, filepath.Ext(path)):
				t.Errorf("%s:%d: %s: not a PNG, JPEG or SVG", page, l.line, path)
			}
		}
	}
	if len(used) == 0 {
		t.Error("no image referenced: the README shows the live page and the counter's table")
	}
	files, _ := filepath.Glob("images/*.png")
	for _, f := range files {
		if abs, _ := filepath.Abs(f); !used[abs] {
			t.Errorf("%s: shown by no page", f)
		}
	}
}

// TestREADME keeps the README short, with the two commands first.
func TestREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 220 {
		t.Errorf("README.md has %d lines: at most about 200; move the depth to docs/", len(lines))
	}
	head := strings.Join(lines[:min(40, len(lines))], "\n")
	for _, cmd := range []string{"make run", "make test"} {
		if !strings.Contains(head, cmd) {
			t.Errorf("README.md: %q is not in its first 40 lines", cmd)
		}
	}
}
