package ghfacts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/ghfacts"
)

// TestGatherAsGoGitHubDecodes gathers every fixture's facts twice from
// its recordings: with ghfacts, which decodes only the members it reads,
// and with GoGitHubFacts, which reads the same fields through go-github's
// own types and getters. Both must gather the same.
func TestGatherAsGoGitHubDecodes(t *testing.T) {
	ctx := context.Background()
	compared := 0
	fixtures, err := fixture.Load(os.DirFS("../../internal/testrepo/testdata/fixtures"), "fixtures")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		if f.Policy != "" {
			continue // an input document: nothing is gathered
		}
		opts := workbench.GatherOptions{DeploymentsToday: f.DeploymentsToday, LocalConfig: f.Config == fixture.ConfigLocal}
		facts, _ := f.Facts()
		got, gotErr := workbench.Gather(ctx, f.Delivery(), facts, opts)
		if gotErr == nil {
			got.GatherAll(ctx)
		}
		reference, err := ghfacts.NewGoGitHubFacts(&http.Client{Transport: fixture.NewPlayer(f.Responses)}, fixture.ReplayAPIURL)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := workbench.Gather(ctx, f.Delivery(), reference, opts)
		if wantErr == nil {
			want.GatherAll(ctx)
		}
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s: error %v, go-github's types give %v", f.Name, gotErr, wantErr)
			continue
		}
		if gotErr != nil {
			continue
		}
		if g, w := describe(t, got), describe(t, want); g != w {
			t.Errorf("%s: gathered\n%s\ngo-github's types give\n%s", f.Name, g, w)
		}
		compared++
	}
	if compared < 30 {
		t.Fatalf("only %d fixtures gathered facts", compared)
	}
}

// describe writes out what was gathered: each subject and its input
// document as JSON, and the codes of the violations found on the way
// (their messages quote each client's own decoding errors).
func describe(t *testing.T, g *workbench.Gathered) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ignored %q\n", g.Ignored)
	for _, s := range g.Subjects {
		subject, err := json.Marshal(s.Subject)
		if err != nil {
			t.Fatal(err)
		}
		in, err := json.Marshal(s.Input())
		if err != nil {
			t.Fatal(err)
		}
		extra := reflect.ValueOf(s).FieldByName("st").Elem().FieldByName("extra")
		var codes []string
		for i := range extra.Len() {
			codes = append(codes, extra.Index(i).FieldByName("Code").String())
		}
		fmt.Fprintf(&b, "%s\n%s\n%v\n", subject, in, codes)
	}
	return b.String()
}
