package waitingroom_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeQuotesExamples holds the README's Go snippets to Example functions, which go test
// compiles and runs: each ```go block comes right after a line
//
//	<!-- example: FILE ExampleName -->
//
// and is that function's body, one tab less indented, after an optional import block whose
// every import FILE has too.
func TestReadmeQuotesExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := regexp.MustCompile(`^<!-- example: (\S+) (Example\w*) -->$`)
	lines := strings.Split(string(readme), "\n")
	snippets := 0
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```go" {
			continue
		}
		snippets++
		end := slices.Index(lines[i+1:], "```")
		if end < 0 {
			t.Fatalf("README.md:%d: a Go snippet that does not end", i+1)
		}
		block := strings.Join(lines[i+1:i+1+end], "\n") + "\n"
		var m []string
		if i > 0 {
			m = marker.FindStringSubmatch(lines[i-1])
		}
		i += end + 1
		if m == nil {
			t.Errorf("README.md:%d: a Go snippet without the line <!-- example: FILE ExampleName --> above it; "+
				"make it an Example function that go test runs", i-end)
			continue
		}
		file, name := m[1], m[2]
		body, imports := exampleSource(t, file, name)
		var quoted []*ast.ImportSpec
		if strings.HasPrefix(block, "import (") {
			imp, rest, ok := strings.Cut(block, ")\n\n")
			if !ok {
				t.Errorf("README.md:%d: the import block of %s is not followed by a blank line", i-end, name)
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), "README.md", "package p\n"+imp+")\n", parser.ImportsOnly)
			if err != nil {
				t.Errorf("README.md:%d: the import block of %s: %v", i-end, name, err)
				continue
			}
			quoted, block = f.Imports, rest
		}
		for _, q := range quoted {
			if !slices.ContainsFunc(imports, func(s *ast.ImportSpec) bool { return importString(s) == importString(q) }) {
				t.Errorf("README.md: %s imports %s, which %s does not", name, importString(q), file)
			}
		}
		if block != body {
			t.Errorf("README.md:%d differs from %s in %s (copy the function's body, one tab less indented):\n--- README\n%s--- %s\n%s",
				i-end, name, file, block, file, body)
		}
	}
	if snippets == 0 {
		t.Error("README.md has no Go snippets: has the test lost them?")
	}
}

// exampleSource returns the body of function name in file (a path from the module's root),
// one tab less indented, and the file's imports.
func exampleSource(t *testing.T, file, name string) (string, []*ast.ImportSpec) {
	t.Helper()
	src, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Fatalf("README.md quotes %s: %v", file, err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != name {
			continue
		}
		inner := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
		lines := strings.Split(strings.TrimPrefix(inner, "\n"), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, "\t")
		}
		return strings.Join(lines, "\n"), f.Imports
	}
	t.Fatalf("README.md quotes %s from %s, which has no such function", name, file)
	return "", nil
}

// importString is an import as written: the name, if any, and the path.
func importString(s *ast.ImportSpec) string {
	if s.Name != nil {
		return s.Name.Name + " " + s.Path.Value
	}
	return s.Path.Value
}
