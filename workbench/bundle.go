package workbench

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// bundleData is where a bundle keeps gitpoli's config and schemas, as the
// files' text: data.gitpoli.repol["deploy.yaml"], data.gitpoli.schemas[...].
const bundleData = "gitpoli"

// WriteBundle writes a standard OPA bundle (tar.gz) of the policies (tests
// left out), with the .repol config and schemas as data, and a manifest
// with the revision. `opa run -b` loads it; `gitpoli serve --bundle` reads
// it back with ReadBundle.
func WriteBundle(w io.Writer, src Sources, revision string) error {
	modules, sources, problems, err := parseModules(src.Policies, isPolicyFile)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return problems
	}
	b := bundle.Bundle{Data: map[string]any{}}
	roots := []string{bundleData}
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m := modules[name]
		rel := strings.TrimPrefix(strings.TrimPrefix(name, src.Policies.Name), "/")
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + rel, Path: "/" + rel, Raw: sources[name], Parsed: m})
		root := m.Package.Path[1].Value.(ast.String)
		if !slices.Contains(roots, string(root)) {
			roots = append(roots, string(root))
		}
	}
	slices.Sort(roots)
	data := map[string]any{}
	for key, dir := range map[string]Dir{"repol": src.Config, "schemas": src.Schemas} {
		files := map[string]any{}
		err := fs.WalkDir(dir.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			text, err := fs.ReadFile(dir.FS, p)
			if err != nil {
				return err
			}
			files[p] = string(text)
			return nil
		})
		if err != nil {
			return fmt.Errorf("bundle %s: %w", dir.Name, err)
		}
		data[key] = files
	}
	b.Data[bundleData] = data
	b.Manifest = bundle.Manifest{Revision: revision, Roots: &roots}
	b.Manifest.Init()
	return bundle.NewWriter(w).Write(b)
}

// ReadBundle reads a bundle written by WriteBundle (or any OPA bundle:
// then the config and schemas must come from elsewhere) into sources.
func ReadBundle(r io.Reader, name string) (Sources, string, error) {
	b, err := bundle.NewReader(r).WithRegoVersion(ast.RegoV1).Read()
	if err != nil {
		return Sources{}, "", fmt.Errorf("read bundle %s: %w", name, err)
	}
	policies := fstest.MapFS{}
	for _, m := range b.Modules {
		policies[strings.TrimPrefix(path.Clean(m.Path), "/")] = &fstest.MapFile{Data: bytes.Clone(m.Raw)}
	}
	src := Sources{Policies: Dir{FS: policies, Name: name + ":policies"}}
	files := func(key string) (fstest.MapFS, bool) {
		g, _ := b.Data[bundleData].(map[string]any)
		m, ok := g[key].(map[string]any)
		if !ok {
			return nil, false
		}
		out := fstest.MapFS{}
		for p, text := range m {
			if s, ok := text.(string); ok {
				out[p] = &fstest.MapFile{Data: []byte(s)}
			}
		}
		return out, true
	}
	if fsys, ok := files("repol"); ok {
		src.Config = Dir{FS: fsys, Name: name + ":.repol"}
	}
	if fsys, ok := files("schemas"); ok {
		src.Schemas = Dir{FS: fsys, Name: name + ":schemas"}
	}
	return src, b.Manifest.Revision, nil
}
