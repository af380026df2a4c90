package workbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gitpoli/gitpoli/workbench/jsontext"
)

// seedPayloads adds every fixture payload as a seed.
func seedPayloads(f *testing.F, add func(payload []byte)) {
	files, _ := filepath.Glob("../internal/testrepo/testdata/fixtures/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var fx struct {
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &fx) == nil && len(fx.Payload) > 0 {
			data = fx.Payload
		}
		add(data)
	}
}

// FuzzNormalize: any payload under any handled event normalizes to
// subjects, a NotPolicyEvent or an error, never a panic; the prefilter
// never drops what Normalize decides.
func FuzzNormalize(f *testing.F) {
	seedPayloads(f, func(p []byte) {
		for _, ev := range []string{"pull_request", "pull_request_review", "check_run", "deployment_protection_rule"} {
			f.Add(ev, p)
		}
	})
	f.Add("pull_request", []byte(`{"action":"opened","pull_request":null}`))
	f.Add("pull_request", []byte(`{"action":"opened","ACTION":"closed","pull_request":{"number":1,"Number":"x"}}`))
	// The prefilter used to stop at the first "action", exactly spelt.
	f.Add("pull_request", []byte(`{"ACTION":"opened","number":1,"pull_request":{"number":1},"repository":{"full_name":"a/b"}}`))
	f.Add("pull_request", []byte(`{"action":"closed","action":"opened","number":1,"pull_request":{"number":1},"repository":{"full_name":"a/b"}}`))
	f.Add("pull_request", []byte(`{"action":"opened","action":null,"\u0061ction":5}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		// Normalize reads a trimmed payload: it must decode as the whole.
		var whole, trimmed payload
		werr := json.Unmarshal(body, &whole)
		if out, ok := jsontext.Trim(body, payloadType); ok {
			terr := json.Unmarshal(out, &trimmed)
			if (werr == nil) != (terr == nil) || werr == nil && !reflect.DeepEqual(whole, trimmed) {
				t.Fatalf("trimmed to %s, the payload decodes differently (%v, %v)", out, werr, terr)
			}
		} else if json.Valid(body) {
			t.Fatal("Trim refused a valid payload")
		}
		d := Delivery{Event: event, ID: "fuzz", Payload: body}
		subjects, err := Normalize(d)
		var npe *NotPolicyEvent
		if err == nil && len(subjects) == 0 {
			t.Fatal("no error and no subject")
		}
		if perr := Prefilter(d); errors.As(perr, &npe) && err == nil {
			t.Fatalf("prefilter ignores (%s) what Normalize decides", npe.Reason)
		}
		// The prefilter's action is the one encoding/json reads.
		if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
			var want struct {
				Action string `json:"action"`
			}
			werr := json.Unmarshal(body, &want)
			got, gerr := PayloadAction(body)
			if (werr == nil) != (gerr == nil) || werr == nil && got != want.Action {
				t.Fatalf("PayloadAction = %q, %v; encoding/json reads %q, %v", got, gerr, want.Action, werr)
			}
		}
	})
}

// FuzzConfig: any bytes as a .repol file load without a panic, and a file
// with problems never passes as valid.
func FuzzConfig(f *testing.F) {
	for _, name := range []string{"deploy.yaml", "pullrequest.yaml"} {
		data, err := os.ReadFile(filepath.Join("../internal/testrepo/testdata/.repol", name))
		if err == nil {
			f.Add(name, data)
		}
	}
	f.Add("deploy.yaml", []byte("policy: &a\n  x: *a\n"))
	f.Add("deploy.yaml", []byte("policy:\n  <<: {version: 1}\n"))
	e := mustEngine(f, repoSources())
	schemas := e.schemas
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		p := "deploy"
		if name == "pullrequest.yaml" {
			p = "pullrequest"
		}
		c, err := parseConfigFile(".repol/"+configFile(p), data, schemas.byName[p], schemas.problems[p])
		if err != nil {
			return
		}
		// Every valid config is an object; anything else must be a problem.
		if _, isObject := c.Value.(map[string]any); !isObject && len(c.Problems) == 0 {
			t.Fatalf("config %q (%T) without a problem", data, c.Value)
		}
	})
}

// FuzzParseInput: eval's input parsing either yields an object or an
// error; deciding on it never panics and never allows an empty document.
func FuzzParseInput(f *testing.F) {
	data, _ := os.ReadFile("testdata/input/deploy-production.json")
	f.Add(data)
	f.Add([]byte(`{"a":[[[[[[[[[[]]]]]]]]]]}`))
	f.Add([]byte(`{"environment": "\xff"}`))
	for _, c := range decideCases(f) {
		f.Add([]byte(c.Input))
	}
	e, err := New(context.Background(), repoSources())
	if err != nil {
		f.Fatal(err)
	}
	ref := e.Topdown()
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(data)
		if err != nil {
			return
		}
		for _, p := range []Policy{Deploy, PullRequest} {
			d, err := e.Decide(context.Background(), p, in)
			if d.Allow && len(d.Violations) > 0 {
				t.Fatal("allowed with violations")
			}
			want, werr := ref.Decide(context.Background(), p, in)
			if msg := disagreement(d, err, want, werr); msg != "" {
				t.Fatalf("%s on %s: %s", p, data, msg)
			}
		}
	})
}
