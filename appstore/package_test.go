package appstore_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every package documents itself with a "// Package x ..." comment.
func TestPackagesHaveDocComments(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{".", "appstoretest", filepath.Join("appstoretest", "specvalidate")} {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		require.NoError(t, err)
		require.Len(t, pkgs, 1, dir)
		for name, p := range pkgs {
			var doc string
			for _, f := range p.Files {
				if f.Doc != nil {
					doc += f.Doc.Text()
				}
			}
			require.True(t, strings.HasPrefix(doc, "Package "+name+" "), "package %s in %s lacks a doc comment", name, dir)
		}
	}
}

// The client must never be able to remove an app from sale or delete
// anything: it has no DELETE and touches no availability resource.
func TestClientCannotRemoveFromSale(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, banned := range []string{"MethodDelete", `"DELETE"`, "appAvailabilities", "territoryAvailabilities", "availableInNewTerritories", "RemoveFromSale"} {
			require.NotContains(t, string(src), banned, "%s must not use %s", f, banned)
		}
	}
}
