package workbench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// compiledSchema validates one kind of config file.
type compiledSchema struct {
	file   string
	schema *jsonschema.Schema
}

// schemaSet holds the compiled schema of every config the policies read,
// by config name. A schema that is missing or broken is reported for its
// config, which then counts as invalid.
type schemaSet struct {
	byName   map[string]*compiledSchema
	problems map[string]Problems
}

func newSchemaSet(dir Dir, specs []*PolicySpec) *schemaSet {
	set := &schemaSet{byName: map[string]*compiledSchema{}, problems: map[string]Problems{}}
	for _, spec := range specs {
		name := spec.Config
		if name == "" || set.byName[name] != nil || set.problems[name] != nil {
			continue
		}
		file := dir.file(schemaFile(name))
		s, err := compileSchema(dir, schemaFile(name))
		if err != nil {
			set.problems[name] = Problems{{Pos: Pos{File: file}, Code: "schema", Msg: fmt.Sprintf("cannot validate config %s of policy %s: %v", configFile(name), spec.Name, err)}}
			continue
		}
		set.byName[name] = &compiledSchema{file: file, schema: s}
	}
	return set
}

func compileSchema(dir Dir, name string) (*jsonschema.Schema, error) {
	data, err := fs.ReadFile(dir.FS, name)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	// Schemas are self-contained: never fetch a $ref from anywhere.
	c.UseLoader(jsonschema.SchemeURLLoader{})
	url := "mem:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	return s, nil
}

// validate checks c.Value against the schema and turns every failure into a
// Problem at the offending value.
func (s *compiledSchema) validate(c *ConfigFile) Problems {
	if s == nil {
		return nil // the caller reports the missing schema
	}
	err := s.schema.Validate(c.Value)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Problems{{Pos: Pos{File: c.File}, Code: "schema", Msg: err.Error()}}
	}
	var ps Problems
	for _, leaf := range leaves(ve) {
		ps = append(ps, c.schemaProblems(leaf)...)
	}
	return ps
}

// leaves flattens a validation error tree into the failures worth showing.
// For oneOf/anyOf it picks the branch that got furthest, so that
// `allowed_branches: [1]` says "must be string" rather than "must be null".
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch ve.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		return branchLeaves(ve)
	case *kind.Group, *kind.Schema, *kind.Reference, *kind.AllOf:
		var out []*jsonschema.ValidationError
		for _, c := range ve.Causes {
			out = append(out, leaves(c)...)
		}
		return out
	}
	return []*jsonschema.ValidationError{ve}
}

func branchLeaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	var wants []string
	var got string
	for _, branch := range ve.Causes {
		ls := leaves(branch)
		if len(ls) == 1 && len(ls[0].InstanceLocation) == len(ve.InstanceLocation) {
			if t, ok := ls[0].ErrorKind.(*kind.Type); ok {
				wants = append(wants, t.Want...)
				got = t.Got
				continue
			}
		}
		// This branch accepted the value's type and failed deeper: its
		// errors are the ones that say what to fix.
		return ls
	}
	if len(wants) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	return []*jsonschema.ValidationError{{
		SchemaURL:        ve.SchemaURL,
		InstanceLocation: ve.InstanceLocation,
		ErrorKind:        &kind.Type{Got: got, Want: wants},
	}}
}

var printer = message.NewPrinter(language.English)

func (c *ConfigFile) schemaProblems(ve *jsonschema.ValidationError) Problems {
	path := ve.InstanceLocation
	at := func(p []string, msg string) Problem {
		np, ok := c.index[pathKey(p)]
		pos := c.Pos(p)
		if ok && !np.key.IsZero() {
			pos = np.key
		}
		return Problem{Pos: pos, Field: c.field(p), Code: "schema", Msg: msg}
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		// Point at the object that lacks the key.
		pos := c.Pos(path)
		if np, ok := c.index[pathKey(path)]; ok && !np.key.IsZero() {
			pos = np.key
		}
		ps := make(Problems, 0, len(k.Missing))
		for _, name := range k.Missing {
			ps = append(ps, Problem{Pos: pos, Field: c.field(append(slices.Clip(path), name)), Code: "schema", Msg: "is required"})
		}
		return ps
	case *kind.AdditionalProperties:
		// Point at each unknown key: a typo must not pass for a rule that is off.
		ps := make(Problems, 0, len(k.Properties))
		for _, name := range k.Properties {
			ps = append(ps, at(append(slices.Clip(path), name), "unknown key"))
		}
		return ps
	}
	return Problems{{Pos: c.Pos(path), Field: c.field(path), Code: "schema", Msg: schemaMessage(ve.ErrorKind)}}
}

// schemaMessage phrases a schema failure as what the value must be.
func schemaMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("must be %s (got %s)", strings.Join(k.Want, " or "), k.Got)
	case *kind.Maximum:
		return fmt.Sprintf("must be <= %s (got %s)", k.Want.RatString(), k.Got.RatString())
	case *kind.Minimum:
		return fmt.Sprintf("must be >= %s (got %s)", k.Want.RatString(), k.Got.RatString())
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d item(s) (got %d)", k.Want, k.Got)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d entry(ies) (got %d)", k.Want, k.Got)
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters (got %d)", k.Want, k.Got)
	}
	return k.LocalizedString(printer)
}
