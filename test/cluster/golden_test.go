package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGolden compares `kustomize build` of every overlay with testdata/<overlay>.yaml, so each
// manifest change is reviewed as a diff of what is really applied. Update with
//
//	go test ./ -run TestGolden -update
func TestGolden(t *testing.T) {
	names := overlays(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			got := renderOverlay(t, name)
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with: go test ./ -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("kustomize build manifests/overlays/%s differs from %s (-want +got); if the change is intended, run: go test ./ -run TestGolden -update\n%s", name, path, diff)
			}
		})
	}

	// A golden file whose overlay is gone would go stale without anyone noticing.
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".yaml"); !known[n] {
			t.Errorf("%s has no overlay manifests/overlays/%s: delete it", f, n)
		}
	}
}
