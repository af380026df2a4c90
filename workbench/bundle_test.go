package workbench

import (
	"bytes"
	"context"
	"slices"
	"testing"
)

// TestBundleRoundTrip writes the repository's policies, config and schemas
// as a bundle, reads it back, and decides the same.
func TestBundleRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteBundle(&buf, repoSources(), "rev-1"); err != nil {
		t.Fatal(err)
	}
	src, rev, err := ReadBundle(&buf, "bundle.tar.gz")
	if err != nil || rev != "rev-1" {
		t.Fatalf("read: %q, %v", rev, err)
	}
	if src.Config.FS == nil || src.Schemas.FS == nil {
		t.Fatal("the bundle lost the config or the schemas")
	}
	fromBundle := mustEngine(t, src)
	fromDirs := mustEngine(t, repoSources())
	if fromBundle.Hash() == "" || len(fromBundle.Config().Problems()) != 0 {
		t.Errorf("bundle engine: hash %q, config problems %v", fromBundle.Hash(), fromBundle.Config().Problems())
	}
	in, err := ParseInput([]byte(`{"environment":"production","ref":"refs/heads/feature/x","repo_environments":["production"],"workflow_meta":{"approvers":["a"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := fromBundle.Decide(context.Background(), Deploy, in)
	b, _ := fromDirs.Decide(context.Background(), Deploy, in)
	if a.Allow != b.Allow || !slices.Equal(a.Codes(), b.Codes()) {
		t.Errorf("bundle decides %v %v, directories %v %v", a.Allow, a.Codes(), b.Allow, b.Codes())
	}
}
