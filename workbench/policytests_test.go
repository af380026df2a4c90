package workbench

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEveryCodeIsTestedBothWays holds the policies to their promise: each
// violation code has an OPA test that makes it fire and one that shows it
// absent, so that a rule can neither go silent nor fire on good input
// unnoticed.
func TestEveryCodeIsTestedBothWays(t *testing.T) {
	codeLit := regexp.MustCompile(`"code": "([a-z_.]+)"`)
	for _, name := range []string{"deploy", "pullrequest"} {
		policy, err := os.ReadFile("../internal/testrepo/testdata/policies/" + name + ".rego")
		if err != nil {
			t.Fatal(err)
		}
		tests, err := os.ReadFile("../internal/testrepo/testdata/policies/" + name + "_test.rego")
		if err != nil {
			t.Fatal(err)
		}
		src := string(tests)
		for _, m := range codeLit.FindAllStringSubmatch(string(policy), -1) {
			code := m[1]
			q := `"` + code + `"`
			fired := strings.Contains(src, "fires("+q) || strings.Contains(src, q+" in codes(") || strings.Contains(src, "message("+q) ||
				regexp.MustCompile(`(?s)== \{[^}]*`+regexp.QuoteMeta(q)).MatchString(src)
			absent := strings.Contains(src, "not "+q+" in ") || strings.Contains(src, "not fires("+q)
			if !fired {
				t.Errorf("%s: no test in %s_test.rego makes %s fire", name, name, code)
			}
			if !absent {
				t.Errorf("%s: no test in %s_test.rego shows %s absent", name, name, code)
			}
		}
	}
}
