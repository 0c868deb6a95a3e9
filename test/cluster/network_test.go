package cluster

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func networkPolicies(tb testing.TB, objs []*unstructured.Unstructured, ns string) []networkingv1.NetworkPolicy {
	tb.Helper()
	var out []networkingv1.NetworkPolicy
	for _, o := range objs {
		if o.GetKind() != "NetworkPolicy" || o.GetNamespace() != ns {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &np, true); err != nil {
			tb.Fatalf("%s: %v", ref(o), err)
		}
		out = append(out, np)
	}
	return out
}

// fleetPorts returns the containerPorts of every Fleet in ns.
func fleetPorts(objs []*unstructured.Unstructured, ns string) []int32 {
	var ports []int32
	for _, o := range objs {
		if o.GetKind() != "Fleet" || o.GetNamespace() != ns {
			continue
		}
		ps, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "ports")
		for _, p := range ps {
			if n, ok := p.(map[string]any)["containerPort"].(float64); ok {
				ports = append(ports, int32(n))
			}
		}
	}
	return ports
}

// TestNetworkPolicies checks the shape of the policies: default deny in both namespaces; game
// servers reachable only from Usher's pods, on their WebSocket port; Usher reaching game servers
// on that same port; the admin port open only to the monitoring namespace.
func TestNetworkPolicies(t *testing.T) {
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			for _, ns := range []string{"usher-system", "usher-games"} {
				denies := false
				for _, np := range networkPolicies(t, objs, ns) {
					s := np.Spec
					if len(s.PodSelector.MatchLabels) == 0 && len(s.PodSelector.MatchExpressions) == 0 &&
						slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeIngress) &&
						slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeEgress) &&
						len(s.Ingress) == 0 && len(s.Egress) == 0 {
						denies = true
					}
				}
				if !denies {
					t.Errorf("namespace %s has no default-deny NetworkPolicy (all pods, Ingress and Egress, no rules)", ns)
				}
			}

			gamePorts := fleetPorts(objs, "usher-games")
			for _, np := range networkPolicies(t, objs, "usher-games") {
				for _, rule := range np.Spec.Ingress {
					if len(rule.From) == 0 {
						t.Errorf("%s: ingress from anywhere into usher-games", np.Name)
					}
					for _, peer := range rule.From {
						if peer.NamespaceSelector == nil || peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "usher-system" ||
							peer.PodSelector == nil || peer.PodSelector.MatchLabels["app.kubernetes.io/name"] != "usher" {
							t.Errorf("%s: ingress peer %+v is not Usher's pods", np.Name, peer)
						}
					}
					for _, p := range rule.Ports {
						if !slices.Contains(gamePorts, p.Port.IntVal) {
							t.Errorf("%s: port %v is no Fleet's containerPort %v", np.Name, p.Port, gamePorts)
						}
					}
				}
			}

			toGames := map[int32]bool{}
			for _, np := range networkPolicies(t, objs, "usher-system") {
				for _, rule := range np.Spec.Egress {
					for _, peer := range rule.To {
						if peer.NamespaceSelector != nil && peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "usher-games" {
							for _, p := range rule.Ports {
								toGames[p.Port.IntVal] = true
							}
						}
					}
				}
				for _, rule := range np.Spec.Ingress {
					for _, p := range rule.Ports {
						if p.Port.IntVal != 8081 {
							continue
						}
						for _, peer := range rule.From {
							if peer.NamespaceSelector == nil || peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
								t.Errorf("%s: admin port 8081 open to %+v, want only the monitoring namespace", np.Name, peer)
							}
						}
						if len(rule.From) == 0 {
							t.Errorf("%s: admin port 8081 open to anyone", np.Name)
						}
					}
				}
			}
			for _, p := range gamePorts {
				if !toGames[p] {
					t.Errorf("no egress from usher-system to usher-games on the game port %d", p)
				}
			}
		})
	}
}

// TestKindPortMappings checks that every NodePort of the kind overlay is forwarded from the host
// by kind-config.yaml, on 127.0.0.1 only, and that the node image is pinned by digest.
func TestKindPortMappings(t *testing.T) {
	cfg := readYAML(t, filepath.Join(repoRoot(t), "kind-config.yaml"))
	nodes, _, _ := unstructured.NestedSlice(cfg, "nodes")
	mapped := map[int64]string{}
	for i, n := range nodes {
		node := n.(map[string]any)
		if img, _ := node["image"].(string); !strings.Contains(img, "kindest/node:v1.3") || !strings.Contains(img, "@sha256:") {
			t.Errorf("nodes[%d].image %q: want a kindest/node v1.3x image pinned by @sha256 digest", i, img)
		}
		ms, _, _ := unstructured.NestedSlice(node, "extraPortMappings")
		for _, m := range ms {
			pm := m.(map[string]any)
			if pm["listenAddress"] != "127.0.0.1" {
				t.Errorf("port mapping %v listens on %v, want 127.0.0.1 only", pm, pm["listenAddress"])
			}
			mapped[int64(pm["containerPort"].(float64))] = fmt.Sprint(pm["hostPort"])
		}
	}
	found := 0
	for _, o := range objectsOf(t, "kind") {
		if o.GetKind() != "Service" {
			continue
		}
		if typ, _, _ := unstructured.NestedString(o.Object, "spec", "type"); typ != "NodePort" {
			continue
		}
		ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
		for _, p := range ports {
			np, ok := p.(map[string]any)["nodePort"].(float64)
			if !ok {
				t.Errorf("%s: NodePort service without a fixed nodePort", ref(o))
				continue
			}
			if _, ok := mapped[int64(np)]; !ok {
				t.Errorf("%s: nodePort %v is not in kind-config.yaml's extraPortMappings", ref(o), np)
			}
			found++
		}
	}
	if found != len(mapped) {
		t.Errorf("kind overlay has %d NodePorts, kind-config.yaml maps %d", found, len(mapped))
	}
}
