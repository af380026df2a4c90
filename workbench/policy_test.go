package workbench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/charmbracelet/x/exp/golden"
)

// TestDiscoverPolicies: what each package's METADATA makes of it, and
// every mistake in an annotation as a problem at the line of its key.
func TestDiscoverPolicies(t *testing.T) {
	const body = "\ndefault allow := false\n\nallow if count(violations) == 0\n\nviolations contains {\"code\": \"c\", \"msg\": \"m\"} if input.x\n"
	policy := func(meta, pkg string) string {
		return "# METADATA\n" + meta + "package " + pkg + "\n" + body
	}
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"full", map[string]string{"wip.rego": policy("# title: No WIP\n# custom:\n#   gitpoli:\n#     on: [pull_request.opened, pull_request.edited, pull_request_review]\n#     answer: check\n#     check_name: gitpoli / No WIP\n#     config: wip\n", "github.wip")}},
		{"check_name_from_title", map[string]string{"a.rego": policy("# title: Team rules\n# custom:\n#   gitpoli:\n#     on: pull_request\n#     answer: check\n", "github.teams.platform")}},
		{"check_name_from_name", map[string]string{"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: check\n", "github.teams.platform")}},
		{"record_and_deployment", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [deployment_protection_rule, pull_request]\n#     answer: record\n", "github.watch"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: [deployment_protection_rule]\n#     answer: deployment\n", "github.gate"),
		}},
		{"unknown_key", map[string]string{"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: check\n#     check: x\n", "github.a")}},
		{"bad_answer", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: comment\n", "github.a"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: [check]\n", "github.b"),
		}},
		{"bad_events", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request.closed, push, 7]\n#     answer: record\n", "github.a"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: {pull_request: true}\n#     answer: record\n", "github.b"),
			"c.rego": policy("# custom:\n#   gitpoli:\n#     on: []\n#     answer: record\n", "github.c"),
		}},
		{"answer_cannot_answer_event", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [deployment_protection_rule]\n#     answer: check\n", "github.a"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: deployment\n#     check_name: x\n", "github.b"),
		}},
		{"required_keys", map[string]string{"a.rego": policy("# custom:\n#   gitpoli:\n#     config: a\n", "github.a")}},
		{"bad_config_and_check_name", map[string]string{"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: check\n#     config: ../secrets\n#     check_name: \"\"\n", "github.a")}},
		{"not_a_mapping", map[string]string{"a.rego": policy("# custom:\n#   gitpoli: yes\n", "github.a")}},
		{"not_annotated", map[string]string{
			"a.rego":    "package github.a\n" + body,
			"lib.rego":  "package github.lib\n\nhelper(x) := x\n",
			"data.rego": "package other.b\n" + body,
		}},
		{"annotated_twice", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\n", "github.a"),
			"b.rego": "# METADATA\n# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\npackage github.a\n\nx := 1\n",
		}},
		{"same_check_name", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: check\n#     check_name: gitpoli / Rules\n", "github.a"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request_review]\n#     answer: check\n#     check_name: gitpoli / Rules\n", "github.b"),
		}},
		{"not_under_github", map[string]string{
			"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\n", "policies.wip"),
			"b.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\n", "github[\"my-policy\"]"),
			"c.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\n", "github"),
		}},
		{"check_name_not_gitpolis", map[string]string{"a.rego": policy("# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: check\n#     check_name: No WIP\n", "github.a")}},
		{"no_allow", map[string]string{"a.rego": "# METADATA\n# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\npackage github.a\n\nviolations := set()\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, src := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(src)}
			}
			src := Sources{
				Policies: Dir{FS: fsys, Name: "policies"},
				Config:   Dir{FS: fstest.MapFS{}, Name: ".repol"},
				Schemas:  Dir{FS: fstest.MapFS{}, Name: "schemas"},
			}
			var b strings.Builder
			e, err := New(context.Background(), src)
			var ps Problems
			switch {
			case errors.As(err, &ps):
				for _, p := range ps {
					fmt.Fprintf(&b, "problem %s\n", p)
				}
			case err != nil:
				t.Fatal(err)
			default:
				for _, s := range e.Policies() {
					fmt.Fprintf(&b, "policy %s on %v answer %s check_name %q config %q at %s\n", s.Name, s.On, s.Answer, s.CheckName, s.Config, s.Pos)
				}
			}
			golden.RequireEqual(t, b.String())
		})
	}
}

// TestPolicyReads: the input keys a policy can read, through object.get,
// references, rules and functions of other packages; a read that names no
// key is a read of every key.
func TestPolicyReads(t *testing.T) {
	const meta = "# METADATA\n# custom:\n#   gitpoli:\n#     on: [pull_request]\n#     answer: record\n"
	tests := []struct {
		name   string
		policy string
		lib    string
		want   string
	}{
		{"ref", "allow := input.pull_request.draft == false\n\nviolations := set()\n", "", "[pull_request]"},
		{"object.get path", "allow := object.get(input, [\"config\", \"on\"], false)\n\nviolations contains \"x\" if object.get(input, \"event\", {}).name == \"y\"\n", "", "[config event]"},
		{"through a function", "import data.lib.h\n\nallow := h.draft(input.pull_request)\n\nviolations contains \"x\" if h.labels\n", "package lib.h\n\ndraft(pr) := pr.draft\n\nlabels contains l if some l in input.pull_request.labels\n", "[pull_request]"},
		{"dynamic key", "allow if {\n\tsome k\n\tinput[k] == 1\n}\n\nviolations := set()\n", "", "[*]"},
		{"whole input", "import data.lib.h\n\nallow := h.ok(input)\n\nviolations := set()\n", "package lib.h\n\nok(x) := x.a == 1\n", "[*]"},
		{"object.get with a computed key", "allow := object.get(input, concat(\"\", [\"a\", \"b\"]), 1) == 1\n\nviolations := set()\n", "", "[*]"},
		{"object.get in a comprehension", "allow := count([x | x := object.get(input, \"workflow_meta\", {})]) > 0\n\nviolations := set()\n", "", "[workflow_meta]"},
		{"whole input in a comprehension", "allow := count([x | y := input; x := y.workflow_meta]) > 0\n\nviolations := set()\n", "", "[*]"},
		{"every", "allow if {\n\tevery name in [\"tests\"] {\n\t\tobject.get(input, [\"workflow_meta\", \"checks\", name], true)\n\t}\n}\n\nviolations := set()\n", "", "[workflow_meta]"},
		{"every over the whole input", "allow if {\n\tevery x in [1] {\n\t\ty := input\n\t\ty.workflow_meta.a == x\n\t}\n}\n\nviolations := set()\n", "", "[*]"},
		{"function of input in a comprehension", "import data.lib.h\n\nallow := count([x | x := h.f(input)]) > 0\n\nviolations := set()\n", "package lib.h\n\nf(x) := x.a\n", "[*]"},
		{"keys of input", "allow := count({k | some k in object.keys(input)}) > 0\n\nviolations := set()\n", "", "[*]"},
		{"json of input", "allow := count([x | x := json.marshal(input)]) > 0\n\nviolations := set()\n", "", "[*]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"p.rego": {Data: []byte(meta + "package github.p\n\n" + tt.policy)}}
			if tt.lib != "" {
				fsys["lib.rego"] = &fstest.MapFile{Data: []byte(tt.lib)}
			}
			e, err := New(context.Background(), Sources{Policies: Dir{FS: fsys, Name: "policies"}, Config: Dir{FS: fstest.MapFS{}}, Schemas: Dir{FS: fstest.MapFS{}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(sortedKeys(e.reads["p"])); got != tt.want {
				t.Errorf("reads %s, want %s", got, tt.want)
			}
		})
	}
}
