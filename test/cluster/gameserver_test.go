package cluster

import (
	"io"
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/usher-gg/usher/contract"
	bridgecfg "github.com/usher-gg/usher/gdsdk-bridge/bridge"
	"github.com/usher-gg/usher/internal/exampleserver"
)

// bridgeEnv lists the gdsdk-bridge's documented variables (docs/game-servers.md, "Flags and
// environment") with whether each holds a duration.
var bridgeEnv = map[string]bool{
	"GDSDK_BRIDGE_LISTEN": false, "GDSDK_BRIDGE_SDK_URL": false, "GDSDK_BRIDGE_GAME": false,
	"GDSDK_BRIDGE_HEALTH_INTERVAL": true, "GDSDK_BRIDGE_HEARTBEAT_TIMEOUT": true,
	"GDSDK_BRIDGE_START_GRACE": true, "GDSDK_BRIDGE_SEAT_TIMEOUT": true,
	"GDSDK_BRIDGE_TERMINATE_TIMEOUT": true, "GDSDK_BRIDGE_CONNECT_WAIT": true,
	"GDSDK_BRIDGE_SDK_TIMEOUT": true, "GDSDK_BRIDGE_LOG_FORMAT": false, "GDSDK_BRIDGE_LOG_LEVEL": false,
}

// gameServerEnv lists what the example server reads (docs/game-servers.md, "Environment").
var gameServerEnv = []string{
	contract.EnvPort, contract.EnvHost, contract.EnvBridgeURL, contract.EnvGame, contract.EnvServer,
	exampleserver.EnvEmptyTimeout, exampleserver.EnvHeartbeat, exampleserver.EnvLogFormat,
}

func envMap(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
		if e.ValueFrom != nil {
			m[e.Name] = "from-" + e.Name // set at run time (e.g. the pod name)
		}
	}
	return m
}

// TestGameServerPods holds each Fleet's pod template to the game server contract: the game
// container is the one Agones watches, it listens on the Fleet's port (never on the SDK
// sidecar's 8080, 9357 or 9358) with a configuration the example server accepts, it finds the
// bridge where the bridge listens, and the bridge stops before the kubelet's grace period ends.
func TestGameServerPods(t *testing.T) {
	for _, overlay := range overlays(t) {
		for _, pt := range podTemplates(t, objectsOf(t, overlay)) {
			if pt.owner.GetKind() != "Fleet" {
				continue
			}
			t.Run(overlay+"/"+pt.String(), func(t *testing.T) {
				gameName, _, _ := unstructured.NestedString(pt.owner.Object, "spec", "template", "spec", "container")
				var game, bridge *corev1.Container
				for _, c := range allContainers(&pt.tmpl.Spec) {
					switch c.Name {
					case gameName:
						game = c
					case "gdsdk-bridge":
						bridge = c
					}
				}
				if game == nil || bridge == nil {
					t.Fatalf("want the game container %q (spec.container) and gdsdk-bridge, got %v", gameName, pt.tmpl.Spec.Containers)
				}

				genv := envMap(game)
				for name := range genv {
					if !contains(gameServerEnv, name) {
						t.Errorf("game container: %s is not a variable of the game server contract", name)
					}
				}
				cfg, err := exampleserver.ConfigFromEnv(func(k string) string { return genv[k] })
				if err != nil {
					t.Fatalf("the example server refuses its environment: %v", err)
				}
				switch cfg.Port {
				case 8080, 9357, 9358:
					t.Errorf("%s=%d belongs to Agones' SDK sidecar", contract.EnvPort, cfg.Port)
				}
				ports, _, _ := unstructured.NestedSlice(pt.owner.Object, "spec", "template", "spec", "ports")
				matched := false
				for _, p := range ports {
					cp, _ := p.(map[string]any)["containerPort"].(float64)
					matched = matched || int(cp) == cfg.Port
				}
				if !matched {
					t.Errorf("%s=%d is no containerPort of the Fleet's ports %v", contract.EnvPort, cfg.Port, ports)
				}

				benv := envMap(bridge)
				listen := "127.0.0.1:9359"
				for name, v := range benv {
					isDuration, known := bridgeEnv[name]
					switch {
					case !known:
						t.Errorf("gdsdk-bridge: %s is not a documented variable", name)
					case isDuration:
						if d, err := time.ParseDuration(v); err != nil || d <= 0 {
							t.Errorf("gdsdk-bridge: %s=%q: want a positive duration", name, v)
						}
					}
				}
				if v, ok := benv["GDSDK_BRIDGE_LISTEN"]; ok {
					listen = v
				}
				// The sidecar itself must accept its environment as the manifest sets it.
				if _, err := bridgecfg.LoadConfig(nil, func(k string) string { return benv[k] }, io.Discard); err != nil {
					t.Errorf("gdsdk-bridge refuses its environment: %v", err)
				}
				u, err := url.Parse(genv[contract.EnvBridgeURL])
				if err != nil || u.Host != listen {
					t.Errorf("%s=%q but the bridge listens on %s", contract.EnvBridgeURL, genv[contract.EnvBridgeURL], listen)
				}
				terminate := 60 * time.Second // the bridge's default
				if v, ok := benv["GDSDK_BRIDGE_TERMINATE_TIMEOUT"]; ok {
					terminate, _ = time.ParseDuration(v)
				}
				grace := 30 * time.Second // Kubernetes' default
				if g := pt.tmpl.Spec.TerminationGracePeriodSeconds; g != nil {
					grace = time.Duration(*g) * time.Second
				}
				if terminate >= grace {
					t.Errorf("the bridge may serve %v after SIGTERM, but the pod is killed after %v", terminate, grace)
				}
				// Only Agones' SDK sidecar may hold an API token: Agones hides it from the game
				// container when the template names no service account; we hide it from the rest.
				if sa := pt.tmpl.Spec.ServiceAccountName; sa != "" {
					t.Errorf("serviceAccountName %q: Agones then leaves the token in the game container", sa)
				}
				for _, c := range allContainers(&pt.tmpl.Spec) {
					if c.Name == gameName {
						continue
					}
					masked := false
					for _, m := range c.VolumeMounts {
						masked = masked || m.MountPath == serviceAccountDir
					}
					if !masked {
						t.Errorf("container %s can read the pod's API token: mount an emptyDir at %s", c.Name, serviceAccountDir)
					}
				}
				if game.LivenessProbe != nil {
					t.Errorf("game container has a livenessProbe: Agones adds its own (/gshealthz) only when there is none")
				}
			})
		}
	}
}

// serviceAccountDir is where Kubernetes mounts a pod's API token.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
