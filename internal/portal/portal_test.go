package portal

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "copy the embedded site to manifests/base/portal/site")

const manifestSite = "../../manifests/base/portal/site"

// TestManifestSiteMatches keeps the nginx portal's files (the manifests) equal to the ones
// usher dev serves, and checks the base kustomization generates a ConfigMap key for each.
func TestManifestSiteMatches(t *testing.T) {
	files := Files()
	if *update {
		for name, f := range files {
			if err := os.WriteFile(filepath.Join(manifestSite, name), f.Body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	kust, err := os.ReadFile("../../manifests/base/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range files {
		got, err := os.ReadFile(filepath.Join(manifestSite, name))
		if err != nil || !bytes.Equal(got, f.Body) {
			t.Errorf("%s/%s differs from internal/portal/site/%s (go test ./internal/portal -update): %v", manifestSite, name, name, err)
		}
		if !strings.Contains(string(kust), "- portal/site/"+name+"\n") {
			t.Errorf("manifests/base/kustomization.yaml does not put %s in the ConfigMap portal-content", name)
		}
	}
	entries, _ := os.ReadDir(manifestSite)
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("%s/%s is not in the embedded site", manifestSite, e.Name())
		}
	}
}

// TestPagesLoadOnlyOwnFiles: no CDN, nothing inline that the Content-Security-Policy would
// block (inline scripts, styles or handlers), every local file a page names exists.
func TestPagesLoadOnlyOwnFiles(t *testing.T) {
	files := Files()
	for name, f := range files {
		if !strings.HasSuffix(name, ".html") {
			continue
		}
		s := string(f.Body)
		for _, bad := range []string{"http://", "https://", "//cdn", "<style", " style=", " onclick=", " onload="} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q: pages load only their own files, with no inline code", name, bad)
			}
		}
		for _, part := range strings.Split(s, `src="`)[1:] {
			ref := part[:strings.Index(part, `"`)]
			if _, ok := files[ref]; !ok {
				t.Errorf("%s loads %s, which the site does not have", name, ref)
			}
		}
		if strings.Contains(s, "<script>") {
			t.Errorf("%s has an inline script", name)
		}
	}
}
