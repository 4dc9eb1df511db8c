package playstore_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPublicPackageRules: playstore and playstoretest are libraries a
// stranger can use alone. They document themselves and import nothing under
// internal/.
func TestPublicPackageRules(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "playstoretest"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		documented := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ParseComments|parser.ImportsOnly)
			require.NoError(t, err)
			if af.Doc != nil && strings.HasPrefix(af.Doc.Text(), "Package "+af.Name.Name+" ") {
				documented = true
			}
			for _, imp := range af.Imports {
				require.NotContains(t, imp.Path.Value, "releasepilot/internal", "%s imports %s", f, imp.Path.Value)
			}
		}
		require.True(t, documented, "package in %s has no // Package doc comment", dir)
	}
}
