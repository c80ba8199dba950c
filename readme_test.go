package aplex_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goBlocks returns the ```go blocks of a markdown text, each as its lines,
// with the README line it starts on.
func goBlocks(md string) (blocks [][]string, starts []int) {
	var cur []string
	in := false
	for i, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, cur = true, nil
			starts = append(starts, i+2)
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, cur)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, starts
}

// containsBlock reports whether block appears in src as consecutive lines,
// each with one same indentation added (an Example function's body is one
// tab deeper than the README shows it); blank lines match blank lines.
func containsBlock(src string, block []string) bool {
	lines := strings.Split(src, "\n")
	for i := 0; i+len(block) <= len(lines); i++ {
		indent, ok := strings.CutSuffix(lines[i], block[0])
		if !ok || strings.TrimLeft(indent, "\t") != "" {
			continue
		}
		match := true
		for j, b := range block {
			l := lines[i+j]
			if b == "" && strings.TrimSpace(l) == "" {
				continue
			}
			if l != indent+b {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// compiledGoFiles returns the content of every Go file of the repository
// that a build or vet in CI compiles (the root module and bench/), by path.
func compiledGoFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if src := string(b); !strings.Contains(src, "//go:build ignore") {
			files[path] = src
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestREADMECodeBlocksAreCompiled: every ```go block of README.md appears
// verbatim in a Go file that CI compiles (an Example function, or a program
// under examples/readme), so the README's code cannot drift into code that
// does not build. To change a block, change the file and paste it back.
func TestREADMECodeBlocksAreCompiled(t *testing.T) {
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, starts := goBlocks(string(md))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block: the extraction is broken")
	}
	files := compiledGoFiles(t)
	for i, block := range blocks {
		found := ""
		for path, src := range files {
			if containsBlock(src, block) {
				found = path
				break
			}
		}
		if found == "" {
			t.Errorf("README.md line %d: the go block starting %q is in no compiled Go file; keep it in an Example or under examples/readme, verbatim", starts[i], block[0])
		} else {
			t.Logf("README.md line %d: block compiled in %s", starts[i], found)
		}
	}
}

// TestContainsBlock checks the matcher the README test relies on: indented
// copies match, an edited line or a different indentation per line does not.
func TestContainsBlock(t *testing.T) {
	src := "func ExampleX() {\n\ta := 1\n\n\tb := a\n}\n"
	for _, c := range []struct {
		block []string
		want  bool
	}{
		{[]string{"a := 1", "", "b := a"}, true},
		{[]string{"func ExampleX() {", "\ta := 1"}, true},
		{[]string{"a := 1", "", "b := 2"}, false},
		{[]string{"a := 1", "b := a"}, false},
		{[]string{"x a := 1"}, false},
	} {
		if got := containsBlock(src, c.block); got != c.want {
			t.Errorf("containsBlock(%q) = %v, want %v", c.block, got, c.want)
		}
	}
}

// TestExamplesShowInDocs: every Example function of the root and cluster
// packages is attached by go/doc (what go doc -http and pkg.go.dev show) to
// the package, a function, a type or a method. An Example named after a
// method of an alias type (ExampleFuture_Cancel: Future's methods are
// declared in internal/engine) or after a name that does not exist is
// silently dropped from the docs; name it ExampleFuture_cancel instead.
func TestExamplesShowInDocs(t *testing.T) {
	for _, dir := range []string{".", "cluster"} {
		fset := token.NewFileSet()
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File
		declared := map[string]bool{}
		for _, p := range paths {
			f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			if !strings.HasSuffix(p, "_test.go") {
				continue
			}
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Example") {
					declared[fd.Name.Name] = true
				}
			}
		}
		p, err := doc.NewFromFiles(fset, files, "github.com/aplex-go/aplex/"+dir)
		if err != nil {
			t.Fatal(err)
		}
		attached := map[string]bool{}
		add := func(exs []*doc.Example) {
			for _, e := range exs {
				attached["Example"+e.Name] = true
			}
		}
		add(p.Examples)
		for _, f := range p.Funcs {
			add(f.Examples)
		}
		for _, ty := range p.Types {
			add(ty.Examples)
			for _, f := range ty.Funcs {
				add(f.Examples)
			}
			for _, m := range ty.Methods {
				add(m.Examples)
			}
		}
		for name := range declared {
			if !attached[name] {
				t.Errorf("%s: %s is shown nowhere in the package docs: name it after an exported name of the package", dir, name)
			}
		}
		if len(declared) == 0 {
			t.Errorf("%s: no Example functions found", dir)
		}
	}
}
