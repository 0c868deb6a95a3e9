package cluster

import (
	"os"
	"path/filepath"
	"testing"

	kindv1alpha4 "sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// TestKindConfigDecodesStrictly decodes kind-config.yaml into kind's own v1alpha4 types with
// unknown fields refused, since no kind cluster can be created here (no Docker engine).
func TestKindConfigDecodesStrictly(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "kind-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg kindv1alpha4.Cluster
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("kind-config.yaml: %v", err)
	}
	if cfg.Kind != "Cluster" || cfg.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("kind %q apiVersion %q", cfg.Kind, cfg.APIVersion)
	}
	if len(cfg.Nodes) == 0 || cfg.Nodes[0].Role != kindv1alpha4.ControlPlaneRole {
		t.Fatalf("nodes %+v: want a control-plane node first", cfg.Nodes)
	}
	for _, m := range cfg.Nodes[0].ExtraPortMappings {
		if m.Protocol != kindv1alpha4.PortMappingProtocolTCP {
			t.Errorf("port mapping %+v: want TCP (nothing here speaks UDP)", m)
		}
	}
}
