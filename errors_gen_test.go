package tributary

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary/tributary/internal/gen"
)

// errors_gen.go is what its generator writes today: regenerate with `go
// generate` after upgrading franz-go.
func TestErrorsGenUpToDate(t *testing.T) {
	want, err := gen.Errors()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("errors_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("errors_gen.go is stale; run `go generate` in the module root")
	}
	// Go's convention for generated files, which tools (gopls, linters,
	// code review) use to treat the file as generated.
	if !regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`).Match(got) {
		t.Fatal("errors_gen.go lacks the `// Code generated ... DO NOT EDIT.` header")
	}
}

// exportedErrors lists every exported *Error variable of the package with
// the code it is declared with, read from the source so that no variable
// escapes the check.
func exportedErrors(t *testing.T) map[string]int16 {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]int16{}
	for _, file := range []string{"errors.go", "errors_gen.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if !name.IsExported() || i >= len(vs.Values) {
					continue
				}
				call, ok := vs.Values[i].(*ast.CallExpr)
				if !ok || fmt.Sprint(call.Fun) != "newError" {
					continue
				}
				lit := call.Args[0]
				neg := false
				if u, ok := lit.(*ast.UnaryExpr); ok && u.Op == token.SUB {
					lit, neg = u.X, true
				}
				code, err := strconv.Atoi(lit.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				if neg {
					code = -code
				}
				out[name.Name] = int16(code)
			}
			return true
		})
	}
	return out
}

// Every exported error: IsRetriable, bare and wrapped, agrees with the
// error's Retriable field, which is what the docs promise, and with Kafka's
// own classification as franz-go's kerr records it.
func TestIsRetriableForEveryExportedError(t *testing.T) {
	vars := exportedErrors(t)
	if len(vars) != len(byCode) {
		t.Fatalf("%d exported errors, %d codes in the table", len(vars), len(byCode))
	}
	for name, code := range vars {
		e := byCode[code]
		if e == nil {
			t.Fatalf("%s: code %d not in the table", name, code)
		}
		if gen.GoName(e.Name) != name {
			t.Errorf("%s is declared with code %d, which is %s", name, code, e.Name)
		}
		k := kerr.TypedErrorForCode(code)
		if k == nil || (k == kerr.UnknownServerError && code != -1) {
			t.Errorf("%s: kerr does not know code %d", name, code)
			continue
		}
		wrapped := fmt.Errorf("produce to orders[0]: %w", fmt.Errorf("attempt 3: %w", e))
		if IsRetriable(e) != e.Retriable || IsRetriable(wrapped) != e.Retriable {
			t.Errorf("%s: IsRetriable disagrees with Retriable=%v", name, e.Retriable)
		}
		if e.Retriable != k.Retriable {
			t.Errorf("%s: Retriable=%v, Kafka (kerr) says %v", name, e.Retriable, k.Retriable)
		}
		if !errors.Is(wrapped, e) || CodeOf(wrapped) != code {
			t.Errorf("%s lost through wrapping", name)
		}
	}
	for _, err := range []error{nil, errors.New("plain"), fmt.Errorf("wrapped: %w", errors.New("x")), ErrorForCode(31000)} {
		if IsRetriable(err) {
			t.Errorf("IsRetriable(%v) = true for an error that is no retriable Kafka code", err)
		}
	}
}
