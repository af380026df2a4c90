// Package testrepo gives tests a policy repository of their own: a frozen
// copy of the starter policies, config, schemas and fixtures in
// testdata/, so that gitpoli's tests never depend on what a policy author
// keeps in the project's policies/ and fixtures/.
package testrepo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Copy copies the frozen repository (below root, the project's root
// relative to the test's package) into a temporary directory and returns
// it.
func Copy(tb testing.TB, root string) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, d := range []string{"policies", ".repol", "schemas", "fixtures"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join(Root(root), d))); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// Root is the frozen repository's directory, given the project's root
// relative to the test's package.
func Root(root string) string { return filepath.Join(root, "internal", "testrepo", "testdata") }

// Edit replaces the first old in the file at path with new; the test
// fails when the file has no old.
func Edit(tb testing.TB, path, old, new string) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		tb.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		tb.Fatal(err)
	}
}
