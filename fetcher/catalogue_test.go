package fetcher

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

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// Every row is complete, and rendering fills every placeholder it uses.
func TestCatalogueRows(t *testing.T) {
	t.Parallel()
	full := hintVars{bucket: "b", role: "r", account: "1", owner: "2", kmsKey: "k", limit: "9", customer: "c"}
	for id, e := range catalogue {
		if len(e.Stages) == 0 || len(e.Codes) == 0 || e.Kind == "" || e.Meaning == "" {
			t.Errorf("row %d (%v) lacks a stage, code, kind or meaning", id, e.Codes)
		}
		if e.Kind == KindTransient {
			t.Errorf("row %d (%v): transient failures are retried, never reported in an event", id, e.Codes)
		}
		if e.Hint == "" && e.Kind == KindAccessDenied {
			t.Errorf("row %d (%v): an access_denied without a hint leaves the customer guessing", id, e.Codes)
		}
		if left := placeholder.FindAllString(hintID(id).render(full), -1); len(left) > 0 {
			t.Errorf("row %d (%v): unknown placeholders %v", id, e.Codes, left)
		}
	}
	if got := hBucketNotVerified.render(hintVars{bucket: "data", customer: "acme"}); !strings.Contains(got, "s3://data/.well-known/ferry-verification/acme") ||
		!strings.Contains(got, "`ferry integration verify-bucket acme data`") {
		t.Errorf("rendered hint %q", got)
	}
}

// Hints come from the catalogue only: no Hint an event can carry is set to
// a literal or a formatted string, so docs/errors.md cannot miss one.
func TestHintsComeFromTheCatalogue(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		// verify.go answers the operator running `ferry integration
		// verify` about the command's own arguments; none of its own hints
		// reaches an event.
		if strings.HasSuffix(name, "_test.go") || name == "catalogue.go" || name == "verify.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		check := func(v ast.Expr) {
			switch x := v.(type) {
			case *ast.BasicLit:
				if x.Value == `""` {
					return
				}
			case *ast.Ident:
				return
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "render" {
					return
				}
				if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "assumeHint" || id.Name == "deniedHint" || id.Name == "notFoundHint") {
					return
				}
			}
			t.Errorf("%s: a hint not taken from the catalogue: %s", fset.Position(v.Pos()), src[fset.Position(v.Pos()).Offset:fset.Position(v.End()).Offset])
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.KeyValueExpr:
				if k, ok := x.Key.(*ast.Ident); ok && k.Name == "Hint" {
					check(x.Value)
				}
			case *ast.AssignStmt:
				for i, l := range x.Lhs {
					if sel, ok := l.(*ast.SelectorExpr); ok && sel.Sel.Name == "Hint" && i < len(x.Rhs) {
						check(x.Rhs[i])
					}
				}
			}
			return true
		})
	}
}
