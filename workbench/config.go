package workbench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.yaml.in/yaml/v3"
)

// ConfigFile is one parsed and validated .repol file.
type ConfigFile struct {
	// File is the display path, e.g. ".repol/deploy.yaml".
	File string
	// Value is the document as JSON-compatible Go values (maps, slices,
	// json.Number, ...); nil when the file could not be parsed (or is null).
	Value any
	// parsed is set when the YAML parsed: a document of null still has to
	// meet its schema.
	parsed bool
	// Problems lists every way the file breaks its schema or YAML itself.
	// A policy whose config has problems always denies.
	Problems Problems

	value ast.Value
	index map[string]nodePos
}

// nodePos locates one value of a YAML document.
type nodePos struct {
	key   Pos // the mapping key naming the value; zero for items and the root
	val   Pos
	field string // display path, e.g. policy.branch_rules[2].source
}

// pathKey is the index key of a document path. Array indices are decimal
// strings, as in JSON Schema instance locations.
func pathKey(path []string) string { return strings.Join(path, "\x00") }

// Pos returns the position of the value at path, or of its nearest
// ancestor present in the file when the value itself is absent.
func (c *ConfigFile) Pos(path []string) Pos {
	if c == nil {
		return Pos{}
	}
	for n := len(path); n >= 0; n-- {
		if np, ok := c.index[pathKey(path[:n])]; ok {
			return np.val
		}
	}
	return Pos{File: c.File}
}

// field renders path for messages, using the file's own knowledge of which
// elements are array indices.
func (c *ConfigFile) field(path []string) string {
	if np, ok := c.index[pathKey(path)]; ok {
		return np.field
	}
	if len(path) == 0 {
		return ""
	}
	parent := c.field(path[:len(path)-1])
	return joinField(parent, path[len(path)-1], false)
}

func joinField(parent, elem string, index bool) string {
	switch {
	case index:
		return parent + "[" + elem + "]"
	case parent == "":
		return elem
	default:
		return parent + "." + elem
	}
}

// loadConfigFile reads name from dir, parses it and validates it against
// schema. A missing file returns nil and no error: the policy is then
// decided without config (and Config reports the file missing).
func loadConfigFile(dir Dir, name string, schema *compiledSchema, schemaProblems Problems) (*ConfigFile, error) {
	data, err := fs.ReadFile(dir.FS, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", dir.file(name), err)
	}
	return parseConfigFile(dir.file(name), data, schema, schemaProblems)
}

// parseConfigFile parses and validates one config file. Without its
// schema a file cannot be trusted: the schema's problems become the file's
// and the policy denies.
func parseConfigFile(file string, data []byte, schema *compiledSchema, schemaProblems Problems) (*ConfigFile, error) {
	c := &ConfigFile{File: file, index: map[string]nodePos{}}
	c.parse(data)
	if c.parsed {
		v, err := ast.InterfaceToValue(c.Value)
		if err != nil {
			return nil, fmt.Errorf("convert config %s: %w", c.File, err)
		}
		c.value = v
		c.Problems = append(c.Problems, schema.validate(c)...)
	}
	if schema == nil {
		c.Problems = append(c.Problems, schemaProblems...)
	}
	c.Problems.Sort()
	return c, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse turns YAML into a JSON-compatible value, recording where each value
// sits so that schema errors and policy violations can point at it.
func (c *ConfigFile) parse(data []byte) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p := Problem{Pos: Pos{File: c.File}, Code: "yaml", Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = m[2]
		}
		c.Problems = append(c.Problems, p)
		return
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		c.Problems = append(c.Problems, Problem{Pos: Pos{File: c.File, Line: 1, Col: 1}, Code: "yaml", Msg: "file is empty"})
		return
	}
	root := doc.Content[0]
	v, ok := c.convert(root, nil, "", Pos{}, 0)
	if ok {
		c.Value, c.parsed = v, true
	}
}

// maxDepth bounds nesting (and alias expansion) of a config document.
const maxDepth = 64

func (c *ConfigFile) pos(n *yaml.Node) Pos { return Pos{File: c.File, Line: n.Line, Col: n.Column} }

func (c *ConfigFile) problem(n *yaml.Node, field, msg string) {
	c.Problems = append(c.Problems, Problem{Pos: c.pos(n), Field: field, Code: "yaml", Msg: msg})
}

func (c *ConfigFile) convert(n *yaml.Node, path []string, field string, keyPos Pos, depth int) (any, bool) {
	if depth > maxDepth {
		c.problem(n, field, "nested too deeply")
		return nil, false
	}
	c.index[pathKey(path)] = nodePos{key: keyPos, val: c.pos(n), field: field}
	switch n.Kind {
	case yaml.AliasNode:
		return c.convert(n.Alias, path, field, keyPos, depth+1)
	case yaml.MappingNode:
		obj := make(map[string]any, len(n.Content)/2)
		seen := make(map[string]int, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.problem(k, field, "mapping keys must be plain strings")
				ok = false
				continue
			}
			if k.Tag == "!!merge" {
				c.problem(k, field, "merge keys (<<) are not supported; write the keys out")
				ok = false
				continue
			}
			name := k.Value
			childField := joinField(field, name, false)
			if first, dup := seen[name]; dup {
				c.problem(k, childField, fmt.Sprintf("duplicate key (first set on line %d)", first))
				ok = false
				continue
			}
			seen[name] = k.Line
			child, childOK := c.convert(v, append(path[:len(path):len(path)], name), childField, c.pos(k), depth+1)
			ok = ok && childOK
			obj[name] = child
		}
		return obj, ok
	case yaml.SequenceNode:
		arr := make([]any, len(n.Content))
		ok := true
		for i, item := range n.Content {
			idx := strconv.Itoa(i)
			child, childOK := c.convert(item, append(path[:len(path):len(path)], idx), joinField(field, idx, true), Pos{}, depth+1)
			ok = ok && childOK
			arr[i] = child
		}
		return arr, ok
	case yaml.ScalarNode:
		return c.scalar(n, field)
	default:
		c.problem(n, field, "unsupported YAML node")
		return nil, false
	}
}

// scalar converts a YAML scalar to its JSON counterpart. Numbers become
// json.Number so that integers stay integers for the schema.
func (c *ConfigFile) scalar(n *yaml.Node, field string) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.problem(n, field, err.Error())
			return nil, false
		}
		return b, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), true
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10)), true
		}
		c.problem(n, field, fmt.Sprintf("integer %s is out of range", n.Value))
		return nil, false
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			c.problem(n, field, fmt.Sprintf("%s is not a finite number", n.Value))
			return nil, false
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
	default:
		// Strings, and timestamps such as last_updated: 2026-01-31 kept as
		// written: the schemas call them strings.
		return n.Value, true
	}
}

// Config holds the parsed .repol files, by config name (the file's name
// without .yaml); a nil entry means the file does not exist.
type Config struct {
	Dir   Dir
	Files map[string]*ConfigFile
	// problems are what is wrong with the directory as a whole: a file no
	// policy claims, a config a policy names that does not exist.
	problems Problems
}

// For returns the config file that policy reads, or nil.
func (c *Config) For(spec *PolicySpec) *ConfigFile {
	if c == nil || spec == nil || spec.Config == "" {
		return nil
	}
	return c.Files[spec.Config]
}

// Problems lists the problems of every config file and of the directory.
func (c *Config) Problems() Problems {
	ps := slices.Clone(c.problems)
	for _, name := range sortedKeys(c.Files) {
		if f := c.Files[name]; f != nil {
			ps = append(ps, f.Problems...)
		}
	}
	ps.Sort()
	return ps
}

// LoadConfig reads and validates the config file of every policy in
// src.Policies that parses (whether or not it compiles) in src.Config
// against its schema in src.Schemas: what is worth saying of the config
// while the policies do not compile. When a policy file does not parse,
// which config the policies read is unknown, and the Config is empty.
// Invalid files are returned with their problems; only I/O failures are
// errors.
func LoadConfig(src Sources) (*Config, error) {
	specs, ok := parsedPolicies(src.Policies)
	if !ok {
		return &Config{Dir: src.Config, Files: map[string]*ConfigFile{}}, nil
	}
	return loadConfig(src, newSchemaSet(src.Schemas, specs), specs)
}

func loadConfig(src Sources, schemas *schemaSet, specs []*PolicySpec) (*Config, error) {
	cfg := &Config{Dir: src.Config, Files: map[string]*ConfigFile{}}
	readers := map[string][]*PolicySpec{}
	for _, spec := range specs {
		if spec.Config != "" {
			readers[spec.Config] = append(readers[spec.Config], spec)
		}
	}
	for _, name := range sortedKeys(readers) {
		f, err := loadConfigFile(src.Config, configFile(name), schemas.byName[name], schemas.problems[name])
		if err != nil {
			return nil, err
		}
		cfg.Files[name] = f
		if f == nil {
			spec := readers[name][0]
			cfg.problems = append(cfg.problems, Problem{Pos: Pos{File: src.Config.file(configFile(name))}, Code: "config",
				Msg: fmt.Sprintf("missing: policy %s (%s) reads its config from this file", spec.Name, spec.Pos)})
			// A file with problems carries its schema's; without one,
			// the schema's are still the policy's.
			cfg.problems = append(cfg.problems, schemas.problems[name]...)
		}
	}
	// A file no policy reads is a mistake (a renamed policy, a typo in the
	// name): its rules would silently not apply.
	entries, err := fs.ReadDir(src.Config.FS, ".")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read config directory %s: %w", src.Config.Name, err)
	}
	for _, de := range entries {
		name, ok := strings.CutSuffix(de.Name(), ".yaml")
		if de.IsDir() || !ok {
			if !de.IsDir() && strings.HasSuffix(de.Name(), ".yml") {
				cfg.problems = append(cfg.problems, Problem{Pos: Pos{File: src.Config.file(de.Name())}, Code: "config",
					Msg: "gitpoli reads .yaml files only: rename it to " + strings.TrimSuffix(de.Name(), ".yml") + ".yaml"})
			}
			continue
		}
		if _, claimed := readers[name]; !claimed {
			cfg.problems = append(cfg.problems, Problem{Pos: Pos{File: src.Config.file(de.Name())}, Code: "config",
				Msg: fmt.Sprintf("no policy reads this file (no policy declares config: %s)", name)})
		}
	}
	cfg.problems.Sort()
	return cfg, nil
}
