// Package configdoc writes the configuration reference (docs/configuration.md)
// from the source of pkg/config and of the adapters whose settings it
// embeds (pkg/kafkaio, pkg/logging): each struct's env tags, defaults and
// doc comments. It reads the source, not the types, because only the source
// holds the comments.
package configdoc

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Setting is one environment variable.
type Setting struct {
	Var, Default, Type, Doc string
	Field                   string // the Go struct and field, for errors
}

// Group is one struct: a service (Producer) or a part services share
// (Kafka).
type Group struct {
	Name, Doc string
	Settings  []Setting
	Parts     []string // groups embedded as fields without an env tag
}

// Package is the source of one Go package: Name is how the services'
// configuration refers to it (kafkaio for kafkaio.Config).
type Package struct {
	Name string
	FS   fs.FS
}

// Read parses the non-test Go files of pkgs and returns the structs that
// hold env-tagged settings: the services (the structs of pkgs[0] no other
// one contains) and, first, the parts they hold, pkgs[0]'s or the
// adapters' (kafkaio.Config), each named by the field that holds it, depth
// first in source order.
func Read(pkgs ...Package) ([]Group, error) {
	type decl struct {
		pkg, name, doc string
		st             *ast.StructType
	}
	structs := map[string]decl{} // by package.Type
	var order []string
	fset := token.NewFileSet()
	for _, pkg := range pkgs {
		files, err := fs.Glob(pkg.FS, "*.go")
		if err != nil {
			return nil, err
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := fs.ReadFile(pkg.FS, name)
			if err != nil {
				return nil, err
			}
			f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, s := range gd.Specs {
					ts := s.(*ast.TypeSpec)
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					doc := ts.Doc
					if doc == nil {
						doc = gd.Doc
					}
					key := pkg.Name + "." + ts.Name.Name
					structs[key] = decl{pkg.Name, ts.Name.Name, doc.Text(), st}
					order = append(order, key)
				}
			}
		}
	}
	// resolve names the struct a field's type is, if one of pkgs has it.
	resolve := func(pkg string, e ast.Expr) (string, bool) {
		key := ""
		switch t := e.(type) {
		case *ast.Ident:
			key = pkg + "." + t.Name
		case *ast.SelectorExpr:
			if x, ok := t.X.(*ast.Ident); ok {
				key = x.Name + "." + t.Sel.Name
			}
		}
		_, ok := structs[key]
		return key, ok
	}
	groups := map[string]*Group{}
	parts := map[string][]string{} // a struct's parts, by key
	names := map[string]string{}   // a part's name: the field that holds it
	for _, key := range order {
		d := structs[key]
		g := &Group{Name: d.name, Doc: oneLine(d.doc)}
		siblings := fieldVars(d.st)
		for _, f := range d.st.Fields.List {
			tag := ""
			if f.Tag != nil {
				tag, _ = strconv.Unquote(f.Tag.Value)
			}
			k, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ",")
			if k == "" {
				if part, ok := resolve(d.pkg, f.Type); ok && len(f.Names) == 1 && f.Names[0].IsExported() {
					parts[key] = append(parts[key], part)
					names[part] = f.Names[0].Name
				}
				continue
			}
			for _, n := range f.Names {
				g.Settings = append(g.Settings, Setting{
					Var:     k,
					Default: reflect.StructTag(tag).Get("envDefault"),
					Type:    typeName(f.Type, reflect.StructTag(tag)),
					Doc:     fieldDoc(n.Name, f, siblings),
					Field:   key + "." + n.Name,
				})
			}
		}
		if len(g.Settings) > 0 || len(parts[key]) > 0 {
			groups[key] = g
		}
	}
	var out []Group
	contained := map[string]bool{} // by name
	seen := map[string]bool{}
	var walk func(key string)
	walk = func(key string) {
		g, ok := groups[key]
		if !ok || seen[key] {
			return
		}
		seen[key] = true
		if name, ok := names[key]; ok {
			// "Config is how..." of kafkaio.Config reads "Kafka is how...".
			if rest, ok := strings.CutPrefix(g.Doc, g.Name+" "); ok {
				g.Doc = name + " " + rest
			}
			g.Name = name
			contained[name] = true
		}
		for _, p := range parts[key] {
			if _, ok := groups[p]; ok {
				g.Parts = append(g.Parts, names[p])
			}
		}
		out = append(out, *g)
		for _, p := range parts[key] {
			walk(p)
		}
	}
	for _, key := range order {
		if _, part := names[key]; !part && structs[key].pkg == pkgs[0].Name {
			walk(key)
		}
	}
	// The parts services share first, then the services.
	slices.SortStableFunc(out, func(a, b Group) int {
		switch {
		case contained[a.Name] == contained[b.Name]:
			return 0
		case contained[a.Name]:
			return -1
		}
		return 1
	})
	return out, nil
}

// fieldVars maps a struct's field names to their variables.
func fieldVars(st *ast.StructType) map[string]string {
	m := map[string]string{}
	for _, f := range st.Fields.List {
		if f.Tag == nil {
			continue
		}
		tag, _ := strconv.Unquote(f.Tag.Value)
		key, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ",")
		for _, n := range f.Names {
			if key != "" {
				m[n.Name] = key
			}
		}
	}
	return m
}

var ident = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// fieldDoc is a field's doc comment, or else its line comment, as one line
// for a table: the field's own name as the subject is dropped ("Seed fixes"
// becomes "fixes"), and the names of other fields of the struct become
// their variables.
func fieldDoc(name string, f *ast.Field, siblings map[string]string) string {
	text := f.Doc.Text()
	if text == "" {
		text = f.Comment.Text()
	}
	text = oneLine(text)
	if rest, ok := strings.CutPrefix(text, name+" "); ok {
		for _, verb := range []string{"is ", "are "} {
			rest = strings.TrimPrefix(rest, verb)
		}
		text = rest
	}
	return ident.ReplaceAllStringFunc(text, func(w string) string {
		// Only names no English word can be (IncludeDC, not Scale).
		if v, ok := siblings[w]; ok && strings.IndexFunc(w[1:], unicode.IsUpper) >= 0 {
			return "`" + v + "`"
		}
		return w
	})
}

// typeName says in words what a variable takes.
func typeName(e ast.Expr, tag reflect.StructTag) string {
	switch t := e.(type) {
	case *ast.Ident:
		switch t.Name {
		case "bool":
			return "true or false"
		case "int", "int64", "int32":
			return "integer"
		case "float64":
			return "number"
		case "string", "Secret":
			return "string"
		}
		return t.Name
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "time" && t.Sel.Name == "Duration" {
			return "duration (`1.5s`, `2m`)"
		}
	case *ast.ArrayType:
		sep := tag.Get("envSeparator")
		if sep == "" {
			sep = ","
		}
		return fmt.Sprintf("list, `%s`-separated", sep)
	}
	return "?"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Undocumented lists the settings without a comment.
func Undocumented(groups []Group) []string {
	var out []string
	for _, g := range groups {
		for _, s := range g.Settings {
			if s.Doc == "" {
				out = append(out, s.Field+" ("+s.Var+")")
			}
		}
	}
	return out
}

// Markdown renders the reference.
func Markdown(groups []Group) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("\n| settings | read by |\n| --- | --- |\n")
	for _, g := range groups {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", g.Name, strings.ToLower(g.Name), strings.Join(readers(groups, g.Name), ", "))
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "\n## %s\n\n", g.Name)
		if g.Doc != "" {
			fmt.Fprintf(&b, "%s\n\n", g.Doc)
		}
		if len(g.Parts) > 0 {
			links := make([]string, len(g.Parts))
			for i, p := range g.Parts {
				links[i] = fmt.Sprintf("[%s](#%s)", p, strings.ToLower(p))
			}
			fmt.Fprintf(&b, "Also reads the settings of %s.\n\n", strings.Join(links, " and "))
		}
		if len(g.Settings) == 0 {
			continue
		}
		b.WriteString("| variable | default | type | meaning |\n| --- | --- | --- | --- |\n")
		for _, s := range g.Settings {
			def := "empty"
			if s.Default != "" {
				def = "`" + s.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Var, def, s.Type, escape(s.Doc))
		}
	}
	b.WriteString(footer)
	return b.Bytes()
}

// readers lists the services (groups no other holds) that read name.
func readers(groups []Group, name string) []string {
	holds := func(g Group, name string) bool { return slices.Contains(g.Parts, name) }
	var out []string
	var reach func(string) []string
	reach = func(n string) []string {
		var parents []string
		for _, g := range groups {
			if holds(g, n) {
				parents = append(parents, g.Name)
			}
		}
		if len(parents) == 0 {
			return []string{n}
		}
		var roots []string
		for _, p := range parents {
			roots = append(roots, reach(p)...)
		}
		return roots
	}
	for _, r := range reach(name) {
		if r = strings.ToLower(r); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

const header = `# Configuration

<!-- Generated by go generate ./pkg/config (internal/cmd/configdoc) from the
     env tags, defaults and doc comments of pkg/config and of the adapters'
     settings it embeds (pkg/kafkaio, pkg/logging). Do not edit: change the
     comments and run make docs. -->

Every setting is an environment variable. A bad value stops the service at
start with one line naming the variable and a non-zero exit. A variable set
to the empty string is empty, not its default (` + "`OUTPUT_DIR=`" + ` turns the
JSON files off).
`

const footer = `
## Not in these structs

- ` + "`GOMEMLIMIT`" + ` and ` + "`GOGC`" + `: Go's own; see [memory](performance.md#memory).
- ` + "`make run`" + `'s ` + "`BROKER`" + `, ` + "`PRODUCER_HTTP_ADDR`" + ` and ` + "`COUNTER_HTTP_ADDR`" + `: see [running](running.md#settings-of-make-run).
- The HTTP ports' TLS and basic auth file, the signals and the JSON files: see [operations](operations.md).
- TLS and SASL with hosted clusters: see [hosted Kafka](hosted-kafka.md).
`

// Sources are the packages the reference is read from, under pkgDir (the
// repository's pkg directory): the services' config first, then the
// adapters whose settings it embeds.
func Sources(pkgDir string) []Package {
	var out []Package
	for _, name := range []string{"config", "kafkaio", "logging"} {
		out = append(out, Package{Name: name, FS: os.DirFS(filepath.Join(pkgDir, name))})
	}
	return out
}
