package workbench

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/charmbracelet/x/exp/golden"
)

// configSources serves the test repository's config with one file
// replaced from memory, and its schemas from disk.
func configSources(name, yaml string) Sources {
	src := repoSources()
	fsys := fstest.MapFS{}
	for _, f := range []string{"deploy.yaml", "pullrequest.yaml"} {
		data, _ := os.ReadFile("../internal/testrepo/testdata/.repol/" + f)
		fsys[f] = &fstest.MapFile{Data: data}
	}
	fsys[name] = &fstest.MapFile{Data: []byte(yaml)}
	src.Config = Dir{FS: fsys, Name: ".repol"}
	return src
}

func TestConfigProblems(t *testing.T) {
	valid, err := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) string {
		if !strings.Contains(string(valid), old) {
			t.Fatalf("sample config has no %q", old)
		}
		return strings.Replace(string(valid), old, new, 1)
	}
	tests := []struct {
		name string
		file string
		yaml string
	}{
		{"valid", "deploy.yaml", string(valid)},
		{"above_maximum", "deploy.yaml", replace("approvals_required: 2", "approvals_required: 11")},
		{"unknown_key", "deploy.yaml", replace("signed_off: true", "signed_of: true")},
		{"wrong_type", "deploy.yaml", replace("tests_passed: true", `tests_passed: "yes"`)},
		{"float_for_integer", "deploy.yaml", replace("max_deployments_per_day: 5", "max_deployments_per_day: 5.5")},
		{"branches_not_a_list", "deploy.yaml", replace(`allowed_branches: ["main"]`, "allowed_branches: main")},
		{"branches_with_number", "deploy.yaml", replace(`allowed_branches: ["main"]`, `allowed_branches: ["main", 7]`)},
		{"branches_empty", "deploy.yaml", replace(`allowed_branches: ["main"]`, "allowed_branches: []")},
		{"several_at_once", "deploy.yaml", replace("approvals_required: 2", "approvals_required: -1\n        aprovals: 2")},
		{"duplicate_key", "deploy.yaml", replace("signed_off: true", "signed_off: true\n        signed_off: false")},
		{"syntax_error", "deploy.yaml", replace("rules:", "rules: [")},
		{"empty", "deploy.yaml", "# nothing here\n"},
		{"not_a_mapping", "deploy.yaml", "- policy\n"},
		{"null_document", "deploy.yaml", "null\n"},
		{"merge_key", "deploy.yaml", "base: &b {version: \"1\"}\npolicy:\n  <<: *b\n"},
		{"pullrequest_missing_rules", "pullrequest.yaml", "policy:\n  version: \"1.0\"\n  branch_rules:\n    - source: feature/*\n      target: \"\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(configSources(tt.file, tt.yaml))
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			var b strings.Builder
			for _, p := range cfg.Problems() {
				b.WriteString(p.String())
				b.WriteString("\n")
			}
			golden.RequireEqual(t, b.String())
		})
	}
}

func TestConfigPos(t *testing.T) {
	cfg, err := LoadConfig(repoSources())
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Files["deploy"]
	tests := []struct {
		path []string
		want string
	}{
		{[]string{"policy", "environments", "production", "rules", "approvals_required"}, ".repol/deploy.yaml:9:29"},
		// an absent key resolves to its nearest enclosing value
		{[]string{"policy", "environments", "production", "rules", "no_such_rule"}, ".repol/deploy.yaml:9:9"},
		{[]string{"policy", "environments", "qa"}, ".repol/deploy.yaml:6:5"},
		{nil, ".repol/deploy.yaml:3:1"},
	}
	for _, tt := range tests {
		if got := f.Pos(tt.path).String(); got != tt.want {
			t.Errorf("Pos(%v) = %s, want %s", tt.path, got, tt.want)
		}
	}
	pr := cfg.Files["pullrequest"]
	if got, want := pr.field([]string{"policy", "branch_rules", "2", "source"}), "policy.branch_rules[2].source"; got != want {
		t.Errorf("field = %q, want %q", got, want)
	}
}

func TestConfigMissingSchemaFailsClosed(t *testing.T) {
	src := repoSources()
	src.Schemas = Dir{FS: fstest.MapFS{}, Name: "schemas"}
	cfg, err := LoadConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Problems()
	if len(ps) != 2 {
		t.Fatalf("got %d problems, want one per config file: %v", len(ps), ps)
	}
	for _, p := range ps {
		if !strings.Contains(p.Msg, "cannot validate config") {
			t.Errorf("problem %q does not say the config cannot be validated", p)
		}
	}
}
