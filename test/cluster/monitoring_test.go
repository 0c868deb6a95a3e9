package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// TestMonitoringComponent renders components/monitoring on top of each overlay (as an operator
// with prometheus-operator would) and decodes its ServiceMonitor strictly into the operator's own
// Go types, since the test API server has no monitoring.coreos.com CRDs; then checks that it
// selects the admin Service and its metrics port.
func TestMonitoringComponent(t *testing.T) {
	root := repoRoot(t)
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			// kustomize wants relative paths to other kustomizations.
			dir := t.TempDir()
			rel := func(p string) string {
				r, err := filepath.Rel(dir, p)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
				"resources:\n- " + rel(filepath.Join(root, "manifests", "overlays", overlay)) + "\n" +
				"components:\n- " + rel(filepath.Join(root, "manifests", "components", "monitoring")) + "\n"
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
				t.Fatal(err)
			}
			objs := decodeObjects(t, kustomizeBuild(t, dir))

			// The Grafana dashboard: a ConfigMap the kube-prometheus-stack sidecar picks up, holding
			// a dashboard (test/e2e checks its queries against a running Usher).
			dash := find(t, objs, "ConfigMap", "monitoring", "usher-grafana-dashboard")
			if dash.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap labels %v: want grafana_dashboard: \"1\" for the Grafana sidecar", dash.GetLabels())
			}
			data, _, _ := unstructured.NestedStringMap(dash.Object, "data")
			var board struct {
				UID    string           `json:"uid"`
				Panels []map[string]any `json:"panels"`
			}
			if err := json.Unmarshal([]byte(data["usher-dashboard.json"]), &board); err != nil || board.UID == "" || len(board.Panels) == 0 {
				t.Errorf("dashboard ConfigMap: usher-dashboard.json is not a dashboard (uid %q, %d panels): %v", board.UID, len(board.Panels), err)
			}

			smObj := find(t, objs, "ServiceMonitor", "usher-system", "usher")
			raw, err := yaml.Marshal(smObj.Object)
			if err != nil {
				t.Fatal(err)
			}
			var sm monitoringv1.ServiceMonitor
			if err := yaml.UnmarshalStrict(raw, &sm); err != nil {
				t.Fatalf("ServiceMonitor does not decode strictly: %v", err)
			}

			svcObj := find(t, objs, "Service", "usher-system", "usher-admin")
			var svc corev1.Service
			raw, _ = yaml.Marshal(svcObj.Object)
			if err := yaml.UnmarshalStrict(raw, &svc); err != nil {
				t.Fatal(err)
			}
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor selector %v does not match Service usher-admin labels %v", sel, svc.Labels)
			}
			for _, s := range objs {
				if s.GetKind() == "Service" && s.GetName() != "usher-admin" && sel.Matches(labels.Set(s.GetLabels())) && s.GetNamespace() == "usher-system" {
					t.Errorf("ServiceMonitor also selects %s: the public API must not be scraped", ref(s))
				}
			}
			if len(sm.Spec.NamespaceSelector.MatchNames) != 1 || sm.Spec.NamespaceSelector.MatchNames[0] != "usher-system" {
				t.Errorf("namespaceSelector %+v: want usher-system only", sm.Spec.NamespaceSelector)
			}
			for _, ep := range sm.Spec.Endpoints {
				found := false
				for _, p := range svc.Spec.Ports {
					found = found || p.Name == ep.Port
				}
				if !found || ep.Path != "/metrics" {
					t.Errorf("endpoint port %q path %q: want a port of usher-admin and /metrics", ep.Port, ep.Path)
				}
			}
		})
	}
}
