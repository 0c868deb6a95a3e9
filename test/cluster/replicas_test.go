package cluster

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usher-gg/usher/internal/redis"
	"github.com/usher-gg/usher/internal/redis/redistest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// These tests hold the manifests to issue 13: Usher runs as interchangeable replicas sharing a
// Redis, survives a node drain and a rollout without dropping below one ready replica, and the
// Redis it shares is reachable by Usher's pods only.

// redisPort is the port Usher's Redis listens on, in-cluster (components/redis) and in the
// homelab overlay's egress rule.
const redisPort = 6379

func typed[T any](tb testing.TB, o *unstructured.Unstructured) *T {
	tb.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		tb.Fatalf("%s: %v", ref(o), err)
	}
	return &v
}

// TestUsherRunsAsReplicas checks the Deployment and its PodDisruptionBudget: at least two
// replicas, spread across nodes without ever leaving one Pending for it, a rolling update that
// never takes a ready replica away before its successor is ready, and a budget that lets a node
// drain evict one replica at a time but never the last.
func TestUsherRunsAsReplicas(t *testing.T) {
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "usher-system", "usher"))
			replicas := int32(1)
			if d.Spec.Replicas != nil {
				replicas = *d.Spec.Replicas
			}
			if replicas < 2 {
				t.Errorf("replicas %d: want at least 2", replicas)
			}
			podLabels := labels.Set(d.Spec.Template.Labels)

			s := d.Spec.Strategy
			if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
				s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.String() != "0" && s.RollingUpdate.MaxUnavailable.String() != "0%" ||
				s.RollingUpdate.MaxSurge == nil || s.RollingUpdate.MaxSurge.String() == "0" || s.RollingUpdate.MaxSurge.String() == "0%" {
				t.Errorf("strategy %+v: want RollingUpdate with maxUnavailable 0 and a surge", s)
			}

			spread := false
			for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
				sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
				if err != nil {
					t.Fatal(err)
				}
				if c.TopologyKey == corev1.LabelHostname && c.MaxSkew == 1 && !sel.Empty() && sel.Matches(podLabels) {
					spread = true
					if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
						t.Errorf("topology spread on %s is %s: with a node cordoned or lost (still counted as a domain) the second replica or a rollout's surge pod would stay Pending; want ScheduleAnyway", c.TopologyKey, c.WhenUnsatisfiable)
					}
				}
			}
			if !spread {
				t.Errorf("no topologySpreadConstraint on %s (maxSkew 1) selecting Usher's pods", corev1.LabelHostname)
			}

			var pdbs []*policyv1.PodDisruptionBudget
			for _, o := range objs {
				if o.GetKind() != "PodDisruptionBudget" || o.GetNamespace() != "usher-system" {
					continue
				}
				pdb := typed[policyv1.PodDisruptionBudget](t, o)
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil {
					t.Fatal(err)
				}
				if !sel.Empty() && sel.Matches(podLabels) {
					pdbs = append(pdbs, pdb)
				}
			}
			if len(pdbs) != 1 {
				t.Fatalf("%d PodDisruptionBudgets select Usher's pods, want 1", len(pdbs))
			}
			pdb := pdbs[0]
			minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(replicas), true)
			if pdb.Spec.MinAvailable == nil || err != nil || minAvailable < 1 || minAvailable >= int(replicas) {
				t.Errorf("PodDisruptionBudget %s minAvailable %v with %d replicas: want at least 1 and fewer than the replicas, so a drain can evict one at a time (%v)", pdb.Name, pdb.Spec.MinAvailable, replicas, err)
			}
		})
	}
}

// secretEnv are Usher's environment variables that come from a Secret, and whether the key must
// be there for the pod to start.
var secretEnv = map[string]struct {
	secret, key string
	optional    bool
}{
	"USHER_JWT_KEY":        {"usher-jwt", "key.pem", false},
	"USHER_ADMIN_TOKEN":    {"usher-admin", "token", false},
	"USHER_REDIS_URL":      {"usher-redis", "url", false},
	"USHER_REDIS_PASSWORD": {"usher-redis", "password", true},
}

// TestUsherSecretsComeFromSecrets checks that Usher's key, admin token and Redis URL and password
// are read from the placeholder Secrets the hack/ scripts fill: the URL is required (replicas
// without a shared Redis would refuse each other's tickets), the password optional (the URL may
// carry it).
func TestUsherSecretsComeFromSecrets(t *testing.T) {
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			_, c := usherContainer(t, objs)
			seen := map[string]bool{}
			for _, e := range c.Env {
				want, ok := secretEnv[e.Name]
				if !ok {
					continue
				}
				seen[e.Name] = true
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("env %s: want it from the Secret %s (key %s)", e.Name, want.secret, want.key)
					continue
				}
				r := e.ValueFrom.SecretKeyRef
				if r.Name != want.secret || r.Key != want.key || ptrIs(r.Optional, true) != want.optional {
					t.Errorf("env %s from Secret %s key %s (optional %v): want Secret %s key %s (optional %v)", e.Name, r.Name, r.Key, ptrIs(r.Optional, true), want.secret, want.key, want.optional)
				}
				find(t, objs, "Secret", "usher-system", r.Name)
			}
			for name := range secretEnv {
				if !seen[name] {
					t.Errorf("env %s is not set", name)
				}
			}
		})
	}
}

// selects reports whether a NetworkPolicy's pod selector matches these pod labels.
func selects(tb testing.TB, np networkingv1.NetworkPolicy, podLabels map[string]string) bool {
	tb.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		tb.Fatal(err)
	}
	return sel.Matches(labels.Set(podLabels))
}

// TestEveryPodHasItsPolicies checks that every pod Usher's manifests run in usher-system is
// selected by a NetworkPolicy that lets something in (default-deny alone would make it
// unreachable, so a missing policy shows as a dead pod, or tempts someone to open it all).
func TestEveryPodHasItsPolicies(t *testing.T) {
	for _, overlay := range overlays(t) {
		objs := objectsOf(t, overlay)
		for _, pt := range podTemplates(t, objs) {
			ns := pt.owner.GetNamespace()
			if ns != "usher-system" {
				continue // usher-games: TestNetworkPolicies
			}
			t.Run(overlay+"/"+pt.String(), func(t *testing.T) {
				for _, np := range networkPolicies(t, objs, ns) {
					if selects(t, np, pt.tmpl.Labels) && len(np.Spec.Ingress) > 0 {
						return
					}
				}
				t.Errorf("no NetworkPolicy in %s admits anything to these pods (labels %v)", ns, pt.tmpl.Labels)
			})
		}
	}
}

// redisPods returns the pod templates in usher-system with a container port 6379: the in-cluster
// Redis (or Valkey).
func redisPods(tb testing.TB, objs []*unstructured.Unstructured) []podTemplate {
	tb.Helper()
	var out []podTemplate
	for _, pt := range podTemplates(tb, objs) {
		for _, c := range pt.tmpl.Spec.Containers {
			for _, p := range c.Ports {
				if p.ContainerPort == redisPort && pt.owner.GetNamespace() == "usher-system" {
					out = append(out, pt)
				}
			}
		}
	}
	return out
}

// TestRedisOnlyFromUsher checks the policies around Usher's Redis: Usher may reach port 6379
// (in-cluster: only the Redis pods; the homelab's external Redis: by port, as documented), and an
// in-cluster Redis admits only Usher's pods, only on 6379, with every other policy leaving it
// closed.
func TestRedisOnlyFromUsher(t *testing.T) {
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			usher := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "usher-system", "usher")).Spec.Template.Labels
			nps := networkPolicies(t, objs, "usher-system")
			rp := redisPods(t, objs)
			if usesComponent(t, overlay, "redis") != (len(rp) == 1) {
				t.Fatalf("%d Redis pod templates in usher-system; want 1 exactly when the overlay uses components/redis", len(rp))
			}

			// Usher's way out to 6379.
			egress := false
			for _, np := range nps {
				if !selects(t, np, usher) {
					continue
				}
				for _, rule := range np.Spec.Egress {
					if !slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.IntVal == redisPort }) {
						continue
					}
					egress = true
					if len(rp) == 0 {
						continue // an external Redis: by port (overlays/homelab/redis.yaml)
					}
					for _, peer := range rule.To {
						if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil ||
							!selects(t, networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PodSelector: *peer.PodSelector}}, rp[0].tmpl.Labels) {
							t.Errorf("%s: Usher's egress on %d goes to %+v, want only the in-cluster Redis pods", np.Name, redisPort, peer)
						}
					}
					if len(rule.To) == 0 {
						t.Errorf("%s: Usher's egress on %d goes anywhere; with an in-cluster Redis, want only its pods", np.Name, redisPort)
					}
				}
			}
			if !egress {
				t.Errorf("no NetworkPolicy lets Usher's pods out on TCP %d to their Redis", redisPort)
			}

			// The in-cluster Redis's way in.
			for _, pt := range rp {
				admitted := false
				for _, np := range nps {
					if !selects(t, np, pt.tmpl.Labels) {
						continue
					}
					for _, rule := range np.Spec.Ingress {
						if len(rule.From) == 0 {
							t.Errorf("%s: admits any source to %s", np.Name, pt)
						}
						for _, peer := range rule.From {
							if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil ||
								!selects(t, networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PodSelector: *peer.PodSelector}}, usher) {
								t.Errorf("%s: admits %+v to %s, want only Usher's pods", np.Name, peer, pt)
								continue
							}
							// The peer must not also match the Redis pods themselves or the portal.
							if selects(t, networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PodSelector: *peer.PodSelector}}, pt.tmpl.Labels) {
								t.Errorf("%s: the peer %+v matches the Redis pods too", np.Name, peer)
							}
						}
						for _, p := range rule.Ports {
							if p.Port == nil || p.Port.IntVal != redisPort {
								t.Errorf("%s: admits port %v to %s, want only %d", np.Name, p.Port, pt, redisPort)
							}
						}
						if len(rule.Ports) == 0 {
							t.Errorf("%s: admits every port to %s, want only %d", np.Name, pt, redisPort)
						}
						admitted = admitted || len(rule.From) > 0
					}
				}
				if !admitted {
					t.Errorf("no NetworkPolicy admits Usher's pods to %s", pt)
				}
			}
		})
	}
}

// TestInClusterRedis checks the Valkey of components/redis against what Usher and
// hack/redis-secret.sh expect of it: the Service's address is the URL the script writes, the
// password is the one Usher reads, nothing is persisted, one instance at a time, the image's
// working directory is writable under a read-only root, and no API token is mounted.
func TestInClusterRedis(t *testing.T) {
	for _, overlay := range overlays(t) {
		if !usesComponent(t, overlay, "redis") {
			continue
		}
		t.Run(overlay, func(t *testing.T) {
			objs := objectsOf(t, overlay)
			rp := redisPods(t, objs)
			if len(rp) != 1 {
				t.Fatalf("%d Redis pod templates, want 1", len(rp))
			}
			pt := rp[0]
			d := typed[appsv1.Deployment](t, pt.owner)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("%s: replicas %v, strategy %s: want 1 and Recreate (two instances would split Usher's state)", pt, d.Spec.Replicas, d.Spec.Strategy.Type)
			}
			spec := pt.tmpl.Spec
			if !ptrIs(spec.AutomountServiceAccountToken, false) {
				t.Errorf("%s: want automountServiceAccountToken false (Redis never calls the API)", pt)
			}
			c := spec.Containers[0]
			if len(spec.Containers) != 1 {
				t.Fatalf("%s: %d containers, want 1", pt, len(spec.Containers))
			}
			pw := passwordArg(t, c)
			if pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != secretEnv["USHER_REDIS_PASSWORD"].secret ||
				pw.ValueFrom.SecretKeyRef.Key != secretEnv["USHER_REDIS_PASSWORD"].key || ptrIs(pw.ValueFrom.SecretKeyRef.Optional, true) {
				t.Errorf("%s: --requirepass from %+v, want the Secret key Usher reads as USHER_REDIS_PASSWORD, not optional", pt, pw.ValueFrom)
			}
			if save := argValue(t, c.Args, "--save"); save != "" {
				t.Errorf("%s: --save %q: want \"\" (nothing persisted: tickets live seconds, the rest rebuilds)", pt, save)
			}
			if ao := argValue(t, c.Args, "--appendonly"); ao != "no" {
				t.Errorf("%s: --appendonly %q, want no", pt, ao)
			}
			if p := argValue(t, c.Args, "--maxmemory-policy"); p != "noeviction" {
				t.Errorf("%s: --maxmemory-policy %q: want noeviction (an evicted ticket or room-code claim would be silently wrong)", pt, p)
			}
			data := false
			for _, m := range c.VolumeMounts {
				if m.MountPath == "/data" && !m.ReadOnly {
					for _, v := range spec.Volumes {
						data = data || v.Name == m.Name && v.EmptyDir != nil
					}
				}
			}
			if !data {
				t.Errorf("%s: want a writable emptyDir at /data (the image's working directory; its entrypoint refuses to start otherwise)", pt)
			}

			// The Service the script's URL names selects these pods on 6379.
			host, port := inClusterRedisAddr(t)
			name, ns, _ := strings.Cut(strings.TrimSuffix(host, ".svc"), ".")
			if ns != "usher-system" {
				t.Fatalf("hack/redis-secret.sh's in-cluster URL names %s, want a Service in usher-system", host)
			}
			svc := typed[corev1.Service](t, find(t, objs, "Service", "usher-system", name))
			sel := labels.SelectorFromSet(svc.Spec.Selector)
			if len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(pt.tmpl.Labels)) {
				t.Errorf("Service %s selects %v, which does not match %s", name, svc.Spec.Selector, pt)
			}
			ok := false
			for _, sp := range svc.Spec.Ports {
				ok = ok || sp.Port == int32(port) && containerPort(&c, sp.TargetPort.String()) == redisPort
			}
			if !ok {
				t.Errorf("Service %s ports %+v: want %d to the container's %d", name, svc.Spec.Ports, port, redisPort)
			}
		})
	}
}

// passwordArg returns the environment variable --requirepass expands ($(NAME)).
func passwordArg(tb testing.TB, c corev1.Container) corev1.EnvVar {
	tb.Helper()
	v := argValue(tb, c.Args, "--requirepass")
	m := regexp.MustCompile(`^\$\(([A-Z_][A-Z0-9_]*)\)$`).FindStringSubmatch(v)
	if m == nil {
		tb.Fatalf("--requirepass %q: want $(VARIABLE) from a Secret, never a literal password", v)
	}
	for _, e := range c.Env {
		if e.Name == m[1] {
			return e
		}
	}
	tb.Fatalf("--requirepass names $(%s), which container %s does not set", m[1], c.Name)
	return corev1.EnvVar{}
}

// inClusterRedisAddr reads the URL hack/redis-secret.sh --in-cluster writes, with the namespace
// variable replaced by its default.
func inClusterRedisAddr(tb testing.TB) (host string, port int) {
	tb.Helper()
	script, err := os.ReadFile(filepath.Join(repoRoot(tb), "hack", "redis-secret.sh"))
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^in_cluster_url="redis://([^":/]+):(\d+)/0"$`).FindSubmatch(script)
	if m == nil {
		tb.Fatal(`hack/redis-secret.sh has no line in_cluster_url="redis://<host>:<port>/0"`)
	}
	host = strings.ReplaceAll(string(m[1]), "$namespace", "usher-system")
	port, _ = strconv.Atoi(string(m[2]))
	return host, port
}

// TestRedisArgsRunOnARealServer starts a real redis-server (the Debian package CI installs) with
// the in-cluster Valkey's arguments, the password expanded as the kubelet would, and checks with
// Usher's own Redis client that it runs, refuses a client without the password, accepts Usher
// with it, and writes nothing when it stops. Valkey 8 takes every option Redis 7 does.
func TestRedisArgsRunOnARealServer(t *testing.T) {
	bin := redistest.Binary(t)
	for _, overlay := range overlays(t) {
		if !usesComponent(t, overlay, "redis") {
			continue
		}
		t.Run(overlay, func(t *testing.T) {
			pt := redisPods(t, objectsOf(t, overlay))[0]
			c := pt.tmpl.Spec.Containers[0]
			if len(c.Args) == 0 || c.Args[0] != "valkey-server" {
				t.Fatalf("args %q: want valkey-server first (the image's entrypoint runs it)", c.Args)
			}
			const password = "0123456789abcdef-test-password"
			env := passwordArg(t, c)
			args := slices.Clone(c.Args[1:])
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "$("+env.Name+")", password)
			}
			addr, dir, stop := runRedis(t, bin, args)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			anon, err := redis.Open(redis.Options{URL: "redis://" + addr})
			if err != nil {
				t.Fatal(err)
			}
			defer anon.Close()
			if err := anon.Ping(ctx); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
				t.Errorf("ping without the password: %v, want NOAUTH", err)
			}
			cl, err := redis.Open(redis.Options{URL: "redis://" + addr + "/0", Password: password})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.Ping(ctx); err != nil {
				t.Errorf("ping as Usher (USHER_REDIS_PASSWORD): %v", err)
			}

			// SIGTERM, as at a pod's end: with any save point Redis writes dump.rdb now.
			stop()
			if files, _ := filepath.Glob(filepath.Join(dir, "*.rdb")); len(files) > 0 {
				t.Errorf("redis-server wrote %v on SIGTERM: want nothing persisted (--save \"\")", files)
			}
		})
	}
}

// runRedis starts redis-server with args on a free loopback port in a temporary directory and
// waits until it listens. stop ends it with SIGTERM, as the kubelet does, and waits for it.
func runRedis(t *testing.T, bin string, args []string) (addr, dir string, stop func()) {
	t.Helper()
	dir = t.TempDir()
	logFile := filepath.Join(dir, "redis.log")
	for range 5 { // a port picked free may be taken before redis binds it: try another
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, append(slices.Clone(args), "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--daemonize", "no", "--logfile", logFile)...)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop = func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		err = waitListening(addr, exited)
		if err == nil {
			t.Cleanup(stop)
			return addr, dir, stop
		}
		stop()
		log, _ := os.ReadFile(logFile)
		if !strings.Contains(string(log), "already in use") {
			t.Fatalf("redis-server %q: %v\n%s", args, err, log)
		}
	}
	t.Fatal("redis-server found no free port in 5 tries")
	return "", "", nil
}

// waitListening waits until addr accepts connections, at most 10s, or the process exits.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
