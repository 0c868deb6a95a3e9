package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// repoRoot is the root of the Usher repository (this module lives in test/cluster).
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// overlays lists the directories under manifests/overlays: every one is rendered, golden-tested
// and applied.
func overlays(tb testing.TB) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(tb), "manifests", "overlays"))
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		tb.Fatal("no overlays under manifests/overlays")
	}
	sort.Strings(names)
	return names
}

// kustomizeBuild renders a kustomization directory like `kustomize build dir`.
func kustomizeBuild(tb testing.TB, dir string) []byte {
	tb.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		tb.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		tb.Fatalf("kustomize build %s: %v", dir, err)
	}
	return out
}

var renderCache sync.Map // overlay name → []byte

// renderOverlay renders manifests/overlays/<name>, once per test binary.
func renderOverlay(tb testing.TB, name string) []byte {
	tb.Helper()
	if out, ok := renderCache.Load(name); ok {
		return out.([]byte)
	}
	out := kustomizeBuild(tb, filepath.Join(repoRoot(tb), "manifests", "overlays", name))
	renderCache.Store(name, out)
	return out
}

// decodeObjects splits a multi-document YAML stream into objects, in order.
func decodeObjects(tb testing.TB, stream []byte) []*unstructured.Unstructured {
	tb.Helper()
	objs, err := decodeObjectsErr(stream)
	if err != nil {
		tb.Fatal(err)
	}
	return objs
}

// decodeObjectsErr is decodeObjects returning its error.
func decodeObjectsErr(stream []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for i, doc := range splitYAML(stream) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// splitYAML splits a YAML stream on document separators.
func splitYAML(stream []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range strings.SplitAfter(string(stream), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.Bytes())
}

// objectsOf renders an overlay and decodes it.
func objectsOf(tb testing.TB, overlay string) []*unstructured.Unstructured {
	tb.Helper()
	return decodeObjects(tb, renderOverlay(tb, overlay))
}

// find returns the one object of that kind, namespace and name, or fails.
func find(tb testing.TB, objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	tb.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	tb.Fatalf("no %s %s/%s in the rendered manifests", kind, ns, name)
	return nil
}

func ref(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}
