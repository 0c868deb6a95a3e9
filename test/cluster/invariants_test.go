package cluster

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/auth"
	"github.com/usher-gg/usher/internal/config"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// These tests need no API server: they hold the rendered overlays to what the project promises
// (docs/security.md, the issue that asked for the manifests) before anything is applied.

// TestEveryContainerIsRestricted checks each pod template against the restricted Pod Security
// Standard and a read-only root filesystem, set at both pod and container level, with resources.
func TestEveryContainerIsRestricted(t *testing.T) {
	for _, overlay := range overlays(t) {
		for _, pt := range podTemplates(t, objectsOf(t, overlay)) {
			t.Run(overlay+"/"+pt.String(), func(t *testing.T) {
				spec := &pt.tmpl.Spec
				if spec.HostNetwork || spec.HostPID || spec.HostIPC {
					t.Error("uses a host namespace")
				}
				psc := spec.SecurityContext
				if psc == nil || !ptrIs(psc.RunAsNonRoot, true) || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
					psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and seccomp RuntimeDefault", psc)
				}
				for _, c := range allContainers(spec) {
					sc := c.SecurityContext
					switch {
					case sc == nil:
						t.Errorf("container %s: no securityContext", c.Name)
						continue
					case !ptrIs(sc.RunAsNonRoot, true) || sc.RunAsUser == nil || *sc.RunAsUser == 0:
						t.Errorf("container %s: want runAsNonRoot and a non-zero runAsUser", c.Name)
					case !ptrIs(sc.ReadOnlyRootFilesystem, true):
						t.Errorf("container %s: want readOnlyRootFilesystem", c.Name)
					case !ptrIs(sc.AllowPrivilegeEscalation, false):
						t.Errorf("container %s: want allowPrivilegeEscalation false", c.Name)
					case ptrIs(sc.Privileged, true):
						t.Errorf("container %s: privileged", c.Name)
					case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) > 0:
						t.Errorf("container %s: capabilities %+v: want drop [ALL] and nothing added", c.Name, sc.Capabilities)
					case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
						t.Errorf("container %s: want seccompProfile RuntimeDefault", c.Name)
					}
					for _, p := range c.Ports {
						if p.HostPort != 0 {
							t.Errorf("container %s: hostPort %d", c.Name, p.HostPort)
						}
					}
					if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("container %s: want cpu and memory requests and a memory limit, got %+v", c.Name, c.Resources)
					}
				}
			})
		}
	}
}

func ptrIs[T comparable](p *T, v T) bool { return p != nil && *p == v }

// TestNamespacesEnforcePodSecurity checks the Pod Security labels: usher-system enforces
// restricted; usher-games enforces restricted, or baseline only through the documented
// agones-sidecar-baseline component; both warn and audit at restricted.
func TestNamespacesEnforcePodSecurity(t *testing.T) {
	for _, overlay := range overlays(t) {
		objs := objectsOf(t, overlay)
		for _, ns := range []string{"usher-system", "usher-games"} {
			l := find(t, objs, "Namespace", "", ns).GetLabels()
			want := map[string]string{
				"pod-security.kubernetes.io/enforce": "restricted",
				"pod-security.kubernetes.io/warn":    "restricted",
				"pod-security.kubernetes.io/audit":   "restricted",
			}
			if ns == "usher-games" && usesComponent(t, overlay, "agones-sidecar-baseline") {
				want["pod-security.kubernetes.io/enforce"] = "baseline"
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s: namespace %s label %s=%q, want %q", overlay, ns, k, l[k], v)
				}
			}
		}
	}
	base := decodeObjects(t, kustomizeBuild(t, filepath.Join(repoRoot(t), "manifests", "base")))
	for _, ns := range []string{"usher-system", "usher-games"} {
		if got := find(t, base, "Namespace", "", ns).GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("base: namespace %s enforces %q, want restricted", ns, got)
		}
	}
}

// usesComponent reports whether an overlay's kustomization lists components/<name>.
func usesComponent(tb testing.TB, overlay, name string) bool {
	tb.Helper()
	k := readYAML(tb, filepath.Join(repoRoot(tb), "manifests", "overlays", overlay, "kustomization.yaml"))
	comps, _, _ := unstructured.NestedStringSlice(k, "components")
	for _, c := range comps {
		if filepath.Base(c) == name {
			return true
		}
	}
	return false
}

func readYAML(tb testing.TB, path string) map[string]any {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestNoKeyIsCommitted checks that the Secrets (JWT key, admin token, Redis URL and password) are
// placeholders with no data, so re-applying never overwrites what the hack/ scripts put in the
// cluster, and that no private key
// appears anywhere in the rendered manifests.
func TestNoKeyIsCommitted(t *testing.T) {
	for _, overlay := range overlays(t) {
		for _, name := range []string{"usher-jwt", "usher-admin", "usher-redis"} {
			s := find(t, objectsOf(t, overlay), "Secret", "usher-system", name)
			for _, f := range []string{"data", "stringData"} {
				if _, ok := s.Object[f]; ok {
					t.Errorf("%s: Secret %s sets %s: secrets must only ever be created in the cluster (hack/jwt-secret.sh, hack/admin-secret.sh, hack/redis-secret.sh)", overlay, name, f)
				}
			}
		}
		if bytes.Contains(renderOverlay(t, overlay), []byte("PRIVATE KEY")) {
			t.Errorf("%s: the rendered manifests contain a private key", overlay)
		}
	}
}

// usherContainer returns the pod spec and the usher container of the usher Deployment.
func usherContainer(tb testing.TB, objs []*unstructured.Unstructured) (*corev1.PodSpec, *corev1.Container) {
	tb.Helper()
	for _, pt := range podTemplates(tb, objs) {
		if pt.owner.GetKind() == "Deployment" && pt.owner.GetName() == "usher" {
			for i := range pt.tmpl.Spec.Containers {
				if pt.tmpl.Spec.Containers[i].Name == "usher" {
					return &pt.tmpl.Spec, &pt.tmpl.Spec.Containers[i]
				}
			}
		}
	}
	tb.Fatal("no usher container in Deployment usher-system/usher")
	return nil, nil
}

// TestUsherConfigIsValid runs the Usher container's arguments, environment and the catalog from
// its ConfigMap through Usher's own `serve` configuration loader, so a misspelt flag, an
// environment variable that names no flag, or a catalog error fails here rather than at start.
func TestUsherConfigIsValid(t *testing.T) {
	key, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := auth.MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			spec, c := usherContainer(t, objs)
			if len(c.Args) == 0 || c.Args[0] != "serve" {
				t.Fatalf("args %q: want serve first", c.Args)
			}

			// Every USHER_* variable must name a serve flag (ff ignores unknown ones).
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			def := config.Default(config.ModeServe)
			def.Flags(fs)
			for _, e := range c.Env {
				if _, ok := secretEnv[e.Name]; !strings.HasPrefix(e.Name, "USHER_") || ok {
					continue // secrets: TestUsherSecretsComeFromSecrets
				}
				name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(e.Name, "USHER_")), "_", "-")
				if fs.Lookup(name) == nil {
					t.Errorf("env %s names no `usher serve` flag (--%s)", e.Name, name)
				}
				if e.ValueFrom != nil {
					t.Errorf("env %s: only the secrets (USHER_JWT_KEY, USHER_ADMIN_TOKEN, USHER_REDIS_URL, USHER_REDIS_PASSWORD) may come from elsewhere", e.Name)
					continue
				}
				t.Setenv(e.Name, e.Value)
			}
			t.Setenv("USHER_JWT_KEY", string(pem))
			t.Setenv("USHER_ADMIN_TOKEN", "a-test-admin-token-0123456789")
			host, port := inClusterRedisAddr(t) // what hack/redis-secret.sh --in-cluster writes
			t.Setenv("USHER_REDIS_URL", fmt.Sprintf("redis://%s:%d/0", host, port))
			t.Setenv("USHER_REDIS_PASSWORD", "a-test-redis-password")

			// The catalog, at the path the args name, from the ConfigMap mounted there.
			cfgPath := mountedFile(t, objs, "usher-system", spec, c, argValue(t, c.Args, "--config"))
			args := replaceArg(c.Args[1:], "--config", cfgPath)
			cfg, err := config.Parse(config.ModeServe, args, "/usher", io.Discard)
			if err != nil {
				t.Fatalf("usher %s: %v", strings.Join(c.Args, " "), err)
			}

			if cfg.RedisURL == "" {
				t.Error("no --redis-url: replicas would not share tickets, limits and holds")
			}

			// Graceful termination must outlast the drain delay and the shutdown timeout (the
			// drain window, which Validate keeps inside the shutdown timeout, included).
			grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
			if need := cfg.DrainDelay + cfg.ShutdownTimeout; grace <= need+5*time.Second {
				t.Errorf("terminationGracePeriodSeconds %v: want more than drain %v + shutdown %v + 5s", grace, cfg.DrainDelay, cfg.ShutdownTimeout)
			}

			// Probes on the public port: alive and ready.
			for _, p := range []struct {
				probe *corev1.Probe
				path  string
			}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || containerPort(c, p.probe.HTTPGet.Port.String()) != 8080 {
					t.Errorf("want an HTTP probe on %s at port 8080, got %+v", p.path, p.probe)
				}
			}

			// Each game's Fleet exists where the catalog says, matches it, and Usher may use it.
			for _, g := range cfg.Games {
				checkGameFleet(t, objs, g)
			}
		})
	}
}

// checkGameFleet holds a catalog entry and its Fleet to each other.
func checkGameFleet(t *testing.T, objs []*unstructured.Unstructured, g config.Game) {
	t.Helper()
	a := g.Agones
	fleet := find(t, objs, "Fleet", a.Namespace, a.Fleet)
	capacity, _, _ := unstructured.NestedFieldNoCopy(fleet.Object, "spec", "template", "spec", "lists", "players", "capacity")
	if n, ok := capacity.(float64); !ok || n != float64(g.MaxPlayers) {
		t.Errorf("game %s: max_players %d but Fleet %s lists.players.capacity %d", g.ID, g.MaxPlayers, a.Fleet, capacity)
	}
	ports, _, _ := unstructured.NestedSlice(fleet.Object, "spec", "template", "spec", "ports")
	var port map[string]any
	for _, p := range ports {
		if m, _ := p.(map[string]any); m["name"] == a.PortName {
			port = m
		}
	}
	if port == nil {
		t.Fatalf("game %s: Fleet %s has no port %q", g.ID, a.Fleet, a.PortName)
	}
	if port["protocol"] != "TCP" {
		t.Errorf("game %s: port %s protocol %v: WebSockets need TCP (Agones defaults to UDP)", g.ID, a.PortName, port["protocol"])
	}
	wantPolicy := map[string]string{config.DialPod: "None", config.DialAddress: "Dynamic"}[a.Dial]
	if port["portPolicy"] != wantPolicy {
		t.Errorf("game %s: dial %q needs portPolicy %s, the Fleet has %v", g.ID, a.Dial, wantPolicy, port["portPolicy"])
	}
	if find(t, objs, "FleetAutoscaler", a.Namespace, a.Fleet) == nil {
		t.Errorf("game %s: no FleetAutoscaler for Fleet %s", g.ID, a.Fleet)
	}
	if labels := fleet.GetLabels(); labels["usher.dev/game"] != g.ID {
		t.Errorf("game %s: Fleet label usher.dev/game=%q", g.ID, labels["usher.dev/game"])
	}
	// The pods must carry the label the NetworkPolicies select on.
	for _, pt := range podTemplates(t, []*unstructured.Unstructured{fleet}) {
		if pt.tmpl.Labels["usher.dev/game"] != g.ID {
			t.Errorf("game %s: pod template label usher.dev/game=%q", g.ID, pt.tmpl.Labels["usher.dev/game"])
		}
	}
	find(t, objs, "RoleBinding", a.Namespace, "usher")
}

func argValue(tb testing.TB, args []string, flagName string) string {
	tb.Helper()
	for i, a := range args {
		if a == flagName && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flagName+"="); ok {
			return v
		}
	}
	tb.Fatalf("args %q have no %s", args, flagName)
	return ""
}

func replaceArg(args []string, flagName, value string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == flagName && i+1 < len(out) {
			out[i+1] = value
		} else if strings.HasPrefix(a, flagName+"=") {
			out[i] = flagName + "=" + value
		}
	}
	return out
}

// mountedFile finds the ConfigMap key mounted at path in container c of a pod in namespace ns,
// writes it to a temporary file and returns that file.
func mountedFile(tb testing.TB, objs []*unstructured.Unstructured, ns string, spec *corev1.PodSpec, c *corev1.Container, path string) string {
	tb.Helper()
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, path)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key := rel
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			cm := find(tb, objs, "ConfigMap", ns, v.ConfigMap.Name)
			data, ok, _ := unstructured.NestedString(cm.Object, "data", key)
			if !ok {
				tb.Fatalf("ConfigMap %s/%s has no key %q, mounted at %s", ns, v.ConfigMap.Name, key, path)
			}
			f := filepath.Join(tb.TempDir(), filepath.Base(path))
			if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatalf("container %s: no ConfigMap mounted at %s", c.Name, path)
	return ""
}

func containerPort(c *corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port {
			return p.ContainerPort
		}
	}
	var n int32
	for _, ch := range port {
		if ch < '0' || ch > '9' {
			return 0
		}
		n = n*10 + ch - '0'
	}
	return n
}
