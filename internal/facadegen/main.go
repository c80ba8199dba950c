// Command facadegen writes the aplex package (the façade) from
// internal/engine: an alias for every exported type, a wrapper for every
// exported function, and the engine's constants and variables, each with
// the engine's doc comment, which is the user documentation. The engine's
// transports.go, what transport packages of this module use, is left out.
//
// Run it with go generate in the module's root (see doc.go); the root's
// TestFacadeIsGenerated fails when the façade is stale.
//
// Usage: facadegen <engine dir> <output file>
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/doc"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: facadegen <engine dir> <output file>")
		os.Exit(2)
	}
	out, err := generate(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "facadegen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "facadegen:", err)
		os.Exit(1)
	}
}

// generate returns the façade's source for the engine package in dir.
func generate(dir string) ([]byte, error) {
	fset := token.NewFileSet()
	// The engine's non-test files, but for transports.go; the engine has no
	// build-tagged exported declarations, so no build context is needed.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	parsedFiles := map[string]*ast.File{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || name == "transports.go" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		if f.Name.Name != "engine" {
			return nil, fmt.Errorf("%s: package %s, want engine", name, f.Name.Name)
		}
		parsedFiles[name] = f
	}
	if len(parsedFiles) == 0 {
		return nil, fmt.Errorf("no package engine in %s", dir)
	}
	pkg := struct{ Files map[string]*ast.File }{parsedFiles}
	type item struct {
		file string
		pos  token.Pos
		text string
	}
	var items []item
	src := func(n ast.Node) string {
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, n); err != nil {
			panic(err) // printing a parsed node into memory cannot fail
		}
		return b.String()
	}
	doc := func(cg *ast.CommentGroup) string {
		if cg == nil {
			return ""
		}
		var b strings.Builder
		for _, c := range cg.List {
			b.WriteString(c.Text + "\n")
		}
		return b.String()
	}
	imports := map[string]string{} // package name → path, from the engine's imports
	for _, f := range pkg.Files {
		for _, is := range f.Imports {
			path := strings.Trim(is.Path.Value, `"`)
			name := path[strings.LastIndex(path, "/")+1:]
			if is.Name != nil {
				name = is.Name.Name
			}
			imports[name] = path
		}
	}
	files := make([]string, 0)
	for name := range pkg.Files {
		files = append(files, name)
	}
	sort.Strings(files)
	methods := methodsByType(pkg.Files, src)
	for _, name := range files {
		f := pkg.Files[name]
		base := filepath.Base(name)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || !d.Name.IsExported() {
					continue
				}
				tp, targs := typeParams(d.Type.TypeParams, src)
				var params, args []string
				for _, p := range d.Type.Params.List {
					var ns []string
					for _, n := range p.Names {
						ns = append(ns, n.Name)
						a := n.Name
						if _, ok := p.Type.(*ast.Ellipsis); ok {
							a += "..."
						}
						args = append(args, a)
					}
					params = append(params, strings.Join(ns, ", ")+" "+src(p.Type))
				}
				res := ""
				if r := d.Type.Results; r != nil {
					var rs []string
					named := false
					for _, f := range r.List {
						var ns []string
						for _, n := range f.Names {
							ns = append(ns, n.Name)
							named = true
						}
						if len(ns) > 0 {
							rs = append(rs, strings.Join(ns, ", ")+" "+src(f.Type))
						} else {
							rs = append(rs, src(f.Type))
						}
					}
					if len(rs) == 1 && !named {
						res = " " + rs[0]
					} else {
						res = " (" + strings.Join(rs, ", ") + ")"
					}
				}
				call := "engine." + d.Name.Name + targs + "(" + strings.Join(args, ", ") + ")"
				body := "return " + call
				if d.Type.Results == nil {
					body = call
				}
				text := doc(d.Doc) + "func " + d.Name.Name + tp + "(" + strings.Join(params, ", ") + ")" + res + " {\n\t" + body + "\n}\n"
				items = append(items, item{base, d.Pos(), text})
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						cg := s.Doc
						if cg == nil && len(d.Specs) == 1 {
							cg = d.Doc
						}
						tp, targs := typeParams(s.TypeParams, src)
						items = append(items, item{base, s.Pos(), doc(cg) + methods[s.Name.Name] + "type " + s.Name.Name + tp + " = engine." + s.Name.Name + targs + "\n"})
					case *ast.ValueSpec:
						kw := "var"
						if d.Tok == token.CONST {
							kw = "const"
						}
						for _, n := range s.Names {
							if !n.IsExported() {
								continue
							}
							cg := s.Doc
							if cg == nil && len(d.Specs) == 1 {
								cg = d.Doc
							}
							items = append(items, item{base, s.Pos(), doc(cg) + kw + " " + n.Name + " = engine." + n.Name + "\n"})
						}
					}
				}
			}
		}
	}
	byFile := map[string][]string{}
	for _, it := range items {
		byFile[it.file] = append(byFile[it.file], it.text)
	}
	var body strings.Builder
	for _, name := range files {
		base := filepath.Base(name)
		if len(byFile[base]) == 0 {
			continue
		}
		fmt.Fprintf(&body, "// From %s.\n\n", base)
		for _, t := range byFile[base] {
			body.WriteString(t + "\n")
		}
	}
	// The imports are the packages the generated code (not its comments) names.
	parsed, err := parser.ParseFile(token.NewFileSet(), "", "package aplex\n"+body.String(), 0)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	ast.Inspect(parsed, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				names[id.Name] = true
			}
		}
		return true
	})
	var std, mod []string
	for name := range names {
		path := imports[name]
		if name == "engine" {
			path = "github.com/aplex-go/aplex/internal/engine"
		}
		if strings.Contains(path, ".") {
			mod = append(mod, strconv.Quote(path))
		} else {
			std = append(std, strconv.Quote(path))
		}
	}
	sort.Strings(std)
	sort.Strings(mod)
	used := append(append(std, ""), mod...)
	var b strings.Builder
	b.WriteString("// Code generated by the façade generator from internal/engine; edit the engine, then go generate. DO NOT EDIT.\n\npackage aplex\n\nimport (\n" + strings.Join(used, "\n") + "\n)\n\n" + body.String())
	return format.Source([]byte(b.String()))
}

// typeParams returns a generic declaration's type parameter list
// ("[A, R any]") and its arguments ("[A, R]"); both empty if it has none.
func typeParams(list *ast.FieldList, src func(ast.Node) string) (params, args string) {
	if list == nil {
		return "", ""
	}
	var ps, as []string
	for _, p := range list.List {
		var ns []string
		for _, n := range p.Names {
			ns = append(ns, n.Name)
			as = append(as, n.Name)
		}
		ps = append(ps, strings.Join(ns, ", ")+" "+src(p.Type))
	}
	return "[" + strings.Join(ps, ", ") + "]", "[" + strings.Join(as, ", ") + "]"
}

// methodsByType returns, for each type with exported methods, a doc comment
// paragraph listing them with the first sentence of their docs: the alias
// in the façade shows no methods of its own (go doc and pkg.go.dev stop at
// the alias), so its doc names them.
func methodsByType(files map[string]*ast.File, src func(ast.Node) string) map[string]string {
	type method struct{ name, line string }
	byType := map[string][]method{}
	var synopsis doc.Package
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || !fd.Name.IsExported() || len(fd.Recv.List) != 1 {
				continue
			}
			recv := fd.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			switch r := recv.(type) {
			case *ast.IndexExpr:
				recv = r.X
			case *ast.IndexListExpr:
				recv = r.X
			}
			id, ok := recv.(*ast.Ident)
			if !ok || !id.IsExported() {
				continue
			}
			sig := strings.TrimPrefix(src(fd.Type), "func")
			line := "//   - " + fd.Name.Name + sig
			if fd.Doc != nil {
				if first := synopsis.Synopsis(fd.Doc.Text()); first != "" {
					line += ": " + first
				}
			}
			byType[id.Name] = append(byType[id.Name], method{fd.Name.Name, line})
		}
	}
	out := map[string]string{}
	for name, ms := range byType {
		sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
		var b strings.Builder
		b.WriteString("//\n// Its methods (go doc shows them on engine." + name + "):\n//\n")
		for _, m := range ms {
			b.WriteString(m.line + "\n")
		}
		out[name] = b.String()
	}
	return out
}
