package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// TestOverlaysApplyStrictly server-side applies every object of every overlay to a real API
// server with the Agones CRDs, with strict field validation: an unknown or misspelt field in a
// Deployment, a NetworkPolicy or a Fleet's pod template fails here instead of being dropped.
func TestOverlaysApplyStrictly(t *testing.T) {
	c := requireCluster(t)
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			c.applyOverlay(t, overlay)

			// What was applied is what the server now has: spot-check through the API.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, o := range objectsOf(t, overlay) {
				ri, err := c.resourceFor(o)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{}); err != nil {
					t.Errorf("get %s after apply: %v", ref(o), err)
				}
			}
		})
	}
}

// TestStrictValidationRejectsMisspeltFields proves the apply above has teeth: a misspelt field,
// in a built-in object and in an Agones object (down into the Fleet's embedded pod template), is
// refused with its name by server-side apply (which refuses a field its schema lacks at any
// validation level; the API server answers 500 "field not declared in schema"). The same typo as
// an ordinary patch is refused under fieldValidation=Strict and silently dropped without it,
// which is what a client-side `kubectl apply --validate=false` would do. Strict validation is
// also what refuses a field given twice in one server-side apply.
func TestStrictValidationRejectsMisspeltFields(t *testing.T) {
	c := requireCluster(t)
	c.applyOverlay(t, "kind") // the objects must exist
	objs := objectsOf(t, "kind")

	cases := []struct {
		name  string
		obj   *unstructured.Unstructured
		path  []string
		typo  string
		value any
	}{
		{"Deployment pod securityContext", find(t, objs, "Deployment", "usher-system", "usher"),
			[]string{"spec", "template", "spec", "securityContext"}, "runAsNonRot", true},
		{"Fleet health", find(t, objs, "Fleet", "usher-games", "example"),
			[]string{"spec", "template", "spec", "health"}, "periodSecond", int64(5)},
		{"Fleet pod template (the embedded PodTemplateSpec schema)", find(t, objs, "Fleet", "usher-games", "example"),
			[]string{"spec", "template", "spec", "template", "spec"}, "terminationGracePeriod", int64(5)},
		{"FleetAutoscaler policy", find(t, objs, "FleetAutoscaler", "usher-games", "example"),
			[]string{"spec", "policy", "buffer"}, "bufferSise", int64(2)},
		{"NetworkPolicy", find(t, objs, "NetworkPolicy", "usher-games", "default-deny"),
			[]string{"spec"}, "policyType", []any{"Ingress"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bad := tc.obj.DeepCopy()
			if err := unstructured.SetNestedField(bad.Object, tc.value, append(tc.path, tc.typo)...); err != nil {
				t.Fatal(err)
			}
			if err := c.applyStrict(ctx, bad, true); err == nil || !strings.Contains(err.Error(), tc.typo) {
				t.Fatalf("server-side apply of a misspelt %q: got %v, want an error naming it", tc.typo, err)
			}

			// The same typo as a merge patch: refused under Strict, silently dropped otherwise.
			ri, err := c.resourceFor(bad)
			if err != nil {
				t.Fatal(err)
			}
			patch := map[string]any{}
			if err := unstructured.SetNestedField(patch, tc.value, append(tc.path, tc.typo)...); err != nil {
				t.Fatal(err)
			}
			body, err := json.Marshal(patch)
			if err != nil {
				t.Fatal(err)
			}
			opts := metav1.PatchOptions{FieldValidation: "Strict", DryRun: []string{metav1.DryRunAll}}
			if _, err := ri.Patch(ctx, bad.GetName(), types.MergePatchType, body, opts); !isInvalidOrBadRequest(err) || !strings.Contains(err.Error(), "unknown field") {
				t.Errorf("strict merge patch with %q: got %v, want 400 or 422 for an unknown field", tc.typo, err)
			}
			opts.FieldValidation = "Ignore"
			if _, err := ri.Patch(ctx, bad.GetName(), types.MergePatchType, body, opts); err != nil {
				t.Errorf("merge patch with %q without strict validation failed too (%v): expected it to be dropped silently", tc.typo, err)
			}
		})
	}

	t.Run("duplicate field", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Two `data` keys: YAML and JSON decoders keep the last one unless told to be strict.
		body := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"usher-games","namespace":"usher-system"},` +
			`"data":{"games.yaml":"games: []"},"data":{"games.yaml":"games: []"}}`)
		cms := c.kube.CoreV1().ConfigMaps("usher-system")
		_, err := cms.Patch(ctx, "usher-games", types.ApplyPatchType, body, metav1.PatchOptions{
			FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: "Strict", DryRun: []string{metav1.DryRunAll},
		})
		if err == nil || !strings.Contains(err.Error(), `key "data" already set`) {
			t.Errorf("strict apply with a duplicated field: got %v, want a duplicate field error", err)
		}
		if _, err := cms.Patch(ctx, "usher-games", types.ApplyPatchType, body, metav1.PatchOptions{
			FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: "Ignore", DryRun: []string{metav1.DryRunAll},
		}); err != nil {
			t.Errorf("apply with a duplicated field without strict validation: %v, want it accepted", err)
		}
	})
}
