package agonestest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Environment variables that point at the shared Agones reference files.
const (
	// EnvCRDs overrides the path of the Agones CRDs (default ../shared/agones/crds.yaml
	// relative to the repository root).
	EnvCRDs = "USHER_AGONES_CRDS"
	// EnvReference overrides the path of AGONES.md (default ../shared/agones/AGONES.md).
	EnvReference = "USHER_AGONES_MD"
)

// SharedFile returns the path of a file of the shared Agones reference: the value of the
// environment variable env when it is set, else ../shared/agones/<name> relative to the
// repository root (found by walking up from the working directory to go.mod). When the
// file is missing the test is skipped, or fails when the CI environment variable is set,
// since CI always has the shared folder.
func SharedFile(tb testing.TB, env, name string) string {
	tb.Helper()
	path := os.Getenv(env)
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			missing(tb, "%s: %v", name, err)
			return ""
		}
		path = filepath.Join(root, "..", "shared", "agones", name)
	}
	if _, err := os.Stat(path); err != nil {
		missing(tb, "%s not available (set %s): %v", name, env, err)
		return ""
	}
	return path
}

func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// repoRoot is the nearest directory at or above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CRDs validates objects against CustomResourceDefinition schemas the way the API server
// does on create: unknown fields are reported (the API server would prune them silently),
// nulls and defaults are applied, then the openAPIV3Schema is checked.
type CRDs struct {
	versions map[schema.GroupVersionKind]*crdVersion
}

type crdVersion struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
}

var (
	loadMu sync.Mutex
	loaded = map[string]*CRDs{} // by path: parsing 1.7 MB of YAML once per test binary is enough
)

// FindCRDs loads the Agones CRDs from SharedFile(tb, EnvCRDs, "crds.yaml").
func FindCRDs(tb testing.TB) *CRDs {
	tb.Helper()
	path := SharedFile(tb, EnvCRDs, "crds.yaml")
	loadMu.Lock()
	defer loadMu.Unlock()
	if c, ok := loaded[path]; ok {
		return c
	}
	c, err := LoadCRDs(path)
	if err != nil {
		tb.Fatal(err)
	}
	loaded[path] = c
	return c
}

// LoadCRDs reads every CustomResourceDefinition of a multi-document YAML file.
func LoadCRDs(path string) (*CRDs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &CRDs{versions: map[schema.GroupVersionKind]*crdVersion{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := utilyaml.Unmarshal(doc, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			var internal apiextensionsinternal.JSONSchemaProps
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return nil, fmt.Errorf("%s %s: %w", crd.Name, v.Name, err)
			}
			structural, err := structuralschema.NewStructural(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: not a structural schema: %w", crd.Name, v.Name, err)
			}
			validator, _, err := apiservervalidation.NewSchemaValidator(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", crd.Name, v.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			c.versions[gvk] = &crdVersion{structural: structural, validator: validator}
		}
	}
	if len(c.versions) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition with a schema", path)
	}
	return c, nil
}

// Validate checks obj (a typed object, a map, or JSON bytes; apiVersion and kind must be
// set) against the schema of its kind and returns every problem found: unknown fields
// first, then schema violations and invalid metadata labels. It returns an error only when
// obj cannot be encoded or no CRD defines its kind.
func (c *CRDs) Validate(obj any) ([]string, error) {
	data, ok := obj.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(obj); err != nil {
			return nil, err
		}
	}
	var u map[string]any
	if err := utiljson.Unmarshal(data, &u); err != nil { // integers stay int64, as in the API server
		return nil, err
	}
	apiVersion, _ := u["apiVersion"].(string)
	kind, _ := u["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	v := c.versions[gv.WithKind(kind)]
	if v == nil {
		return nil, fmt.Errorf("no CRD for %s %s", apiVersion, kind)
	}
	var problems []string
	for _, p := range structuralpruning.PruneWithOptions(u, v.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		problems = append(problems, "unknown field "+p)
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u, v.structural)
	structuraldefaulting.Default(u, v.structural)
	for _, e := range apiservervalidation.ValidateCustomResource(nil, u, v.validator) {
		problems = append(problems, e.Error())
	}
	if md, ok := u["metadata"].(map[string]any); ok {
		labels := map[string]string{}
		if l, ok := md["labels"].(map[string]any); ok {
			for k, val := range l {
				labels[k], _ = val.(string)
			}
		}
		for _, e := range metav1validation.ValidateLabels(labels, field.NewPath("metadata", "labels")) {
			problems = append(problems, e.Error())
		}
	}
	return problems, nil
}

// MustValidate fails tb unless obj validates with no problem.
func (c *CRDs) MustValidate(tb testing.TB, obj any) {
	tb.Helper()
	problems, err := c.Validate(obj)
	if err != nil {
		tb.Fatal(err)
	}
	if len(problems) > 0 {
		tb.Errorf("object does not validate against its CRD:\n  %s", strings.Join(problems, "\n  "))
	}
}
