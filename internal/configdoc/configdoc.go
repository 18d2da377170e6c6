// Package configdoc writes the configuration reference (docs/configuration.md)
// from the source of pkg/config: each struct's env tags, defaults and doc
// comments. It reads the source, not the types, because only the source
// holds the comments.
package configdoc

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
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

// Read parses the non-test Go files of dir and returns the structs that hold
// env-tagged settings, services first (structs no other one contains), each
// followed depth first by the parts it holds, in source order.
func Read(fsys fs.FS) ([]Group, error) {
	fset := token.NewFileSet()
	files, err := fs.Glob(fsys, "*.go")
	if err != nil {
		return nil, err
	}
	type decl struct {
		doc string
		st  *ast.StructType
	}
	structs := map[string]decl{}
	var order []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
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
				structs[ts.Name.Name] = decl{doc.Text(), st}
				order = append(order, ts.Name.Name)
			}
		}
	}
	groups := map[string]*Group{}
	contained := map[string]bool{}
	for _, name := range order {
		d := structs[name]
		g := &Group{Name: name, Doc: oneLine(d.doc)}
		siblings := fieldVars(d.st)
		for _, f := range d.st.Fields.List {
			tag := ""
			if f.Tag != nil {
				tag, _ = strconv.Unquote(f.Tag.Value)
			}
			key, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ",")
			if key == "" {
				if id, ok := f.Type.(*ast.Ident); ok {
					if _, isStruct := structs[id.Name]; isStruct {
						g.Parts = append(g.Parts, id.Name)
						contained[id.Name] = true
					}
				}
				continue
			}
			for _, n := range f.Names {
				g.Settings = append(g.Settings, Setting{
					Var:     key,
					Default: reflect.StructTag(tag).Get("envDefault"),
					Type:    typeName(f.Type, reflect.StructTag(tag)),
					Doc:     fieldDoc(n.Name, f, siblings),
					Field:   name + "." + n.Name,
				})
			}
		}
		if len(g.Settings) > 0 || len(g.Parts) > 0 {
			groups[name] = g
		}
	}
	var out []Group
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		g, ok := groups[name]
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		out = append(out, *g)
		for _, p := range g.Parts {
			walk(p)
		}
	}
	for _, name := range order {
		if !contained[name] {
			walk(name)
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
     env tags, defaults and doc comments of pkg/config. Do not edit: change the
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
