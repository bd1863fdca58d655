package main

import (
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// modulePrefix is the import path prefix of mogway's own packages.
const modulePrefix = "github.com/mogway/mogway/"

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../.."

// ownImports returns the mogway packages that the non-test files of the package in dir (relative to
// the repository) import for this platform, as paths relative to the module ("internal/conf"),
// sorted; ok is false when dir holds no buildable Go package.
func ownImports(t *testing.T, dir string) (imports []string, ok bool) {
	t.Helper()
	pkg, err := build.ImportDir(filepath.Join(repoRoot, filepath.FromSlash(dir)), 0)
	if err != nil {
		var none *build.NoGoError
		if errors.As(err, &none) {
			return nil, false
		}
		t.Fatalf("%s: %v", dir, err)
	}
	for _, imp := range pkg.Imports {
		if rel, found := strings.CutPrefix(imp, modulePrefix); found {
			imports = append(imports, rel)
		}
	}
	slices.Sort(imports)
	return imports, true
}

// documentedImports reads the package table of docs/architecture.md: for each package named in
// the first column (a row may name several), the mogway packages its third column lists, sorted.
func documentedImports(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile("`([^`]+)`")
	rows := map[string][]string{}
	for line := range strings.Lines(string(data)) {
		cols := strings.Split(line, "|")
		if len(cols) != 5 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`") {
			continue
		}
		var imports []string
		for _, m := range quoted.FindAllStringSubmatch(cols[3], -1) {
			imports = append(imports, m[1])
		}
		slices.Sort(imports)
		for _, m := range quoted.FindAllStringSubmatch(cols[1], -1) {
			rows[m[1]] = imports
		}
	}
	if len(rows) == 0 {
		t.Fatal("docs/architecture.md: no package table found")
	}
	return rows
}

// TestArchitectureImports: the package table of docs/architecture.md lists exactly what each
// package imports of mogway's, and every package of the repository has a row (or is the shared
// SQL of the stores, named in its stores' row); only cmd/mogway imports gateway and nothing imports
// cmd/mogway; cache, purge and storaged import only leaf packages under internal/, which import no
// mogway package outside internal/ (internal/clustertest, which starts whole daemons, aside).
func TestArchitectureImports(t *testing.T) {
	t.Parallel()
	doc := documentedImports(t)
	real := map[string][]string{}
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if p != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "work" || name == "node_modules") {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil {
			return err
		}
		if imports, ok := ownImports(t, filepath.ToSlash(rel)); ok {
			real[filepath.ToSlash(rel)] = imports
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, imports := range real {
		want, listed := doc[pkg]
		switch {
		case !listed && pkg == "tracker/store/internal/sqlstore":
		case !listed:
			t.Errorf("%s has no row in docs/architecture.md (it imports %q)", pkg, imports)
		case !slices.Equal(imports, want):
			t.Errorf("%s imports %q; docs/architecture.md lists %q", pkg, imports, want)
		}
		for _, imp := range imports {
			if imp == "cmd/mogway" || imp == "gateway" && pkg != "cmd/mogway" {
				t.Errorf("%s imports %s; only cmd/mogway may import gateway, and nothing cmd/mogway", pkg, imp)
			}
			leafOnly := pkg == "cache" || pkg == "purge" || pkg == "storaged" || strings.HasPrefix(pkg, "internal/") && !strings.HasPrefix(pkg, "internal/clustertest")
			if leafOnly && !strings.HasPrefix(imp, "internal/") {
				t.Errorf("%s imports %s; it may import only leaf packages under internal/", pkg, imp)
			}
		}
	}
	for pkg := range doc {
		if _, ok := real[pkg]; !ok {
			t.Errorf("docs/architecture.md has a row for %s, which is not a package of the repository", pkg)
		}
	}
}
