// Package readmetest keeps the README's code honest: every Go snippet in
// README.md marked with
//
//	<!-- snippet: path/to/file_test.go FunctionName -->
//
// on the line before its fence must be, to the character, the body of that
// function (an Example, compiled and run by go test with its Output), less
// the Output comment.
package readmetest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var marker = regexp.MustCompile("(?m)^<!-- snippet: (\\S+) (\\S+) -->\n```go\n((?s:.*?))```")

func TestReadmeSnippetsAreExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n, marked := strings.Count(string(readme), "```go\n"), len(marker.FindAll(readme, -1)); n != marked {
		t.Errorf("README.md has %d Go snippets, %d of them marked: mark each with the Example it is", n, marked)
	}
	found := marker.FindAllSubmatch(readme, -1)
	if len(found) < 5 {
		t.Fatalf("%d marked snippets in README.md, want the recipes at least", len(found))
	}
	for _, m := range found {
		file, fn, snippet := string(m[1]), string(m[2]), string(m[3])
		body, err := functionBody(filepath.Join(root, file), fn)
		if err != nil {
			t.Errorf("%s %s: %v", file, fn, err)
			continue
		}
		if strings.TrimSpace(snippet) != body {
			t.Errorf("README.md's snippet of %s %s differs from the function's body; the body is:\n%s", file, fn, body)
		}
	}
}

// functionBody returns the body of the function name in file, dedented by
// one tab, without its Output comment.
func functionBody(file, name string) (string, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != name {
			continue
		}
		body := string(src[fset.Position(fd.Body.Lbrace).Offset+1 : fset.Position(fd.Body.Rbrace).Offset])
		if i := strings.Index(body, "\t// Output:"); i >= 0 {
			body = body[:i]
		}
		lines := strings.Split(strings.Trim(body, "\n"), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, "\t")
		}
		return strings.TrimSpace(strings.Join(lines, "\n")), nil
	}
	return "", os.ErrNotExist
}
