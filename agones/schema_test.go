package agones_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/usher-gg/usher/agones"
	"github.com/usher-gg/usher/agones/agonestest"
	"github.com/usher-gg/usher/contract"
)

// exampleFleet is the Fleet of AGONES.md §3.1, built from our types.
func exampleFleet() *agones.Fleet {
	f := &agones.Fleet{
		ObjectMeta: metav1.ObjectMeta{Name: "ws-game", Namespace: "default"},
		Spec: agones.FleetSpec{
			Replicas:   2,
			Scheduling: agones.Packed,
			Strategy:   appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: agones.GameServerTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ws-game"}},
				Spec: agones.GameServerSpec{
					Ports: []agones.GameServerPort{{
						Name: "ws", PortPolicy: agones.PortPolicyDynamic, ContainerPort: 7777, Protocol: agones.ProtocolTCP,
					}},
					Health: agones.Health{InitialDelaySeconds: 5, PeriodSeconds: 5, FailureThreshold: 3},
					Lists:  map[string]agones.ListStatus{contract.PlayersList: {Capacity: 8}},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name:  "game",
						Image: "registry.example.com/ws-game:1.0.0",
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
						},
					}}}},
				},
			},
		},
	}
	agones.SetGroupVersionKind(f)
	return f
}

// exampleFleetYAML is AGONES.md §3.1 verbatim (comments dropped).
const exampleFleetYAML = `
apiVersion: agones.dev/v1
kind: Fleet
metadata:
  name: ws-game
  namespace: default
spec:
  replicas: 2
  scheduling: Packed
  strategy:
    type: RollingUpdate
  template:
    metadata:
      labels:
        app: ws-game
    spec:
      ports:
      - name: ws
        portPolicy: Dynamic
        containerPort: 7777
        protocol: TCP
      health:
        initialDelaySeconds: 5
        periodSeconds: 5
        failureThreshold: 3
      lists:
        players:
          capacity: 8
      template:
        spec:
          containers:
          - name: game
            image: registry.example.com/ws-game:1.0.0
            resources:
              requests: {cpu: 100m, memory: 64Mi}
              limits: {memory: 128Mi}
`

// exampleAutoscaler is the FleetAutoscaler of AGONES.md §3.2.
func exampleAutoscaler() *agones.FleetAutoscaler {
	fas := &agones.FleetAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "ws-game-autoscaler", Namespace: "default"},
		Spec: agones.FleetAutoscalerSpec{
			FleetName: "ws-game",
			Policy: agones.FleetAutoscalerPolicy{
				Type:   agones.FleetAutoscalerPolicyBuffer,
				Buffer: &agones.BufferPolicy{BufferSize: intstr.FromInt32(2), MinReplicas: 2, MaxReplicas: 20},
			},
			Sync: &agones.FleetAutoscalerSync{Type: agones.FleetAutoscalerSyncFixed, FixedInterval: agones.FixedIntervalSync{Seconds: 30}},
		},
	}
	agones.SetGroupVersionKind(fas)
	return fas
}

const exampleAutoscalerYAML = `
apiVersion: autoscaling.agones.dev/v1
kind: FleetAutoscaler
metadata:
  name: ws-game-autoscaler
  namespace: default
spec:
  fleetName: ws-game
  policy:
    type: Buffer
    buffer:
      bufferSize: 2
      minReplicas: 2
      maxReplicas: 20
  sync:
    type: FixedInterval
    fixedInterval:
      seconds: 30
`

// podGameServer is a GameServer as the cluster manifests use it: portPolicy None (dialled
// on the pod IP), TCP, a players list, a restricted pod, health settings and a counter.
func podGameServer() *agones.GameServer {
	f := false
	t := true
	gs := &agones.GameServer{
		ObjectMeta: metav1.ObjectMeta{Name: "treasure-x7k2p-9bq4d", Namespace: "games",
			Labels: map[string]string{agones.LabelFleet: "treasure", contract.LabelGame: "treasure"}},
		Spec: agones.GameServerSpec{
			Container: "game",
			Ports: []agones.GameServerPort{
				{Name: "ws", PortPolicy: agones.PortPolicyNone, ContainerPort: 7777, Protocol: agones.ProtocolTCP},
				{Name: "bridge", PortPolicy: agones.PortPolicyDynamic, ContainerPort: 9359, Protocol: agones.ProtocolTCP, Container: "bridge"},
			},
			Health:    agones.Health{Disabled: false, PeriodSeconds: 5, FailureThreshold: 3, InitialDelaySeconds: 10},
			SdkServer: agones.SdkServer{LogLevel: "Info", GRPCPort: 9357, HTTPPort: 9358},
			Counters:  map[string]agones.CounterStatus{"sessions": {Count: 0, Capacity: 4}},
			Lists:     map[string]agones.ListStatus{contract.PlayersList: {Capacity: 8, Values: []string{}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "treasure"}},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &t, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{
						{Name: "game", Image: "registry.example.com/treasure:1.0.0", SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						}},
						{Name: "bridge", Image: "registry.example.com/gdsdk-bridge:1.0.0"},
					},
				},
			},
		},
	}
	agones.SetGroupVersionKind(gs)
	return gs
}

// servedGameServer is a GameServer with a status, as Agones reports an Allocated one.
func servedGameServer() *agones.GameServer {
	gs := agonestest.GameServer("default", "ws-game", "ws-game-x7k2p-9bq4d", "ws", 8)
	gs.Status.State = agones.GameServerStateAllocated
	gs.Status.Lists = map[string]agones.ListStatus{contract.PlayersList: {Capacity: 8, Values: []string{"player-1"}}}
	gs.Status.Counters = map[string]agones.CounterStatus{"sessions": {Count: 1, Capacity: 4}}
	agones.SetGroupVersionKind(gs)
	return gs
}

func TestSchemaValid(t *testing.T) {
	crds := agonestest.FindCRDs(t)
	tests := []struct {
		name string
		obj  any
	}{
		{"fleet from AGONES.md 3.1", exampleFleet()},
		{"fleet autoscaler from AGONES.md 3.2", exampleAutoscaler()},
		{"fleet autoscaler with a percentage buffer", func() *agones.FleetAutoscaler {
			fas := exampleAutoscaler()
			fas.Spec.Policy.Buffer.BufferSize = intstr.FromString("20%")
			fas.Spec.Policy.Buffer.MinReplicas = 1
			fas.Spec.Sync = nil
			return fas
		}()},
		{"game server, portPolicy None and Dynamic", podGameServer()},
		{"game server with status", servedGameServer()},
		{"fleet of portPolicy None servers", func() *agones.Fleet {
			f := exampleFleet()
			f.Spec.Template.Spec = podGameServer().Spec
			f.Spec.Priorities = []agones.Priority{{Type: agones.PriorityList, Key: contract.PlayersList, Order: agones.Descending}}
			return f
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crds.MustValidate(t, tt.obj)
		})
	}
}

// TestSchemaInvalid proves the validation can fail: a misspelt field or a bad value in
// what our types produce is caught.
func TestSchemaInvalid(t *testing.T) {
	crds := agonestest.FindCRDs(t)
	tests := []struct {
		name   string
		obj    any
		mutate func(m map[string]any)
		want   string // a substring of one reported problem
	}{
		{"misspelt portPolicy", podGameServer(), func(m map[string]any) {
			port := dig(m, "spec", "ports").([]any)[0].(map[string]any)
			port["portPolicyy"] = port["portPolicy"]
			delete(port, "portPolicy")
		}, "unknown field spec.ports[0].portPolicyy"},
		{"misspelt bufferSize", exampleAutoscaler(), func(m map[string]any) {
			buf := dig(m, "spec", "policy", "buffer").(map[string]any)
			buf["bufferSise"] = buf["bufferSize"]
			delete(buf, "bufferSize")
		}, "unknown field spec.policy.buffer.bufferSise"},
		{"unknown port policy", podGameServer(), func(m map[string]any) {
			dig(m, "spec", "ports").([]any)[0].(map[string]any)["portPolicy"] = "Dynamik"
		}, `spec.ports[0].portPolicy: Unsupported value: "Dynamik"`},
		{"protocol in lower case", podGameServer(), func(m map[string]any) {
			dig(m, "spec", "ports").([]any)[0].(map[string]any)["protocol"] = "tcp"
		}, "spec.ports[0].protocol: Unsupported value"},
		{"list capacity over 1000", exampleFleet(), func(m map[string]any) {
			dig(m, "spec", "template", "spec", "lists", "players").(map[string]any)["capacity"] = 1001
		}, "spec.template.spec.lists.players.capacity"},
		{"misspelt field in the pod template", exampleFleet(), func(m map[string]any) {
			c := dig(m, "spec", "template", "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
			c["imagee"] = c["image"]
		}, "unknown field spec.template.spec.template.spec.containers[0].imagee"},
		{"misspelt status field", servedGameServer(), func(m map[string]any) {
			dig(m, "status").(map[string]any)["nodename"] = "node-1"
		}, "unknown field status.nodename"},
		{"zero failure threshold", podGameServer(), func(m map[string]any) {
			dig(m, "spec", "health").(map[string]any)["failureThreshold"] = 0
		}, "spec.health.failureThreshold"},
		{"fleet autoscaler without maxReplicas", exampleAutoscaler(), func(m map[string]any) {
			delete(dig(m, "spec", "policy", "buffer").(map[string]any), "maxReplicas")
		}, "spec.policy.buffer.maxReplicas: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := toMap(t, tt.obj)
			tt.mutate(m)
			problems, err := crds.Validate(m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems = %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

// TestSchemaExamplesMatchTypes checks that our types say what the YAML of AGONES.md §3
// says: decoding the YAML and encoding our object give the same document.
func TestSchemaExamplesMatchTypes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		obj  any
	}{
		{"fleet", exampleFleetYAML, exampleFleet()},
		{"fleet autoscaler", exampleAutoscalerYAML, exampleAutoscaler()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want map[string]any
			if err := yaml.Unmarshal([]byte(tt.yaml), &want); err != nil {
				t.Fatal(err)
			}
			got := toMap(t, tt.obj)
			// Encoding adds empty defaults (metadata.creationTimestamp: null and the like);
			// every key of the YAML must be there with the same value, and nothing else
			// may carry a value.
			if problems := compareKeys(want, got, ""); len(problems) > 0 {
				t.Errorf("encoded object differs from the YAML:\n  %s", strings.Join(problems, "\n  "))
			}
		})
	}
}

// TestAllocationExamplesRoundTrip decodes the GameServerAllocation JSON examples of
// AGONES.md §1.3a, §1.4 and §1.5 into our types and encodes them again: no key may be lost
// and no value changed, in spec and in status.
func TestAllocationExamplesRoundTrip(t *testing.T) {
	path := agonestest.SharedFile(t, agonestest.EnvReference, "AGONES.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	examples := jsonExamples(string(doc), "1.3a", "1.4", "1.5")
	if len(examples) < 5 {
		t.Fatalf("found %d JSON examples in §1.3a, §1.4 and §1.5 of %s, want at least 5", len(examples), path)
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			var want map[string]any
			if err := json.Unmarshal([]byte(ex.text), &want); err != nil {
				t.Fatal(err)
			}
			var got any
			if _, ok := want["state"]; ok { // §1.3a shows a bare status
				var st agones.GameServerAllocationStatus
				roundTrip(t, ex.text, &st, &got)
			} else {
				var gsa agones.GameServerAllocation
				roundTrip(t, ex.text, &gsa, &got)
				if _, ok := want["status"]; ok && gsa.Status.State == "" {
					t.Error("status.state not decoded")
				}
				if len(gsa.Spec.Selectors) == 0 && want["spec"] != nil {
					t.Error("spec.selectors not decoded")
				}
			}
			if problems := compareKeys(want, got, ""); len(problems) > 0 {
				t.Errorf("round trip changed the example:\n  %s", strings.Join(problems, "\n  "))
			}
		})
	}
}

// roundTrip decodes text into typed case-sensitively, as the client does (encoding/json
// would also accept keys in another case), and encodes it into out.
func roundTrip(t *testing.T, text string, typed any, out *any) {
	t.Helper()
	if err := kjson.UnmarshalCaseSensitivePreserveInts([]byte(text), typed); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
}

type example struct{ name, text string }

// jsonExamples returns the ```json blocks of the "### <n> ..." sections of an AGONES.md.
func jsonExamples(doc string, sections ...string) []example {
	var out []example
	block := regexp.MustCompile("(?s)```json\n(.*?)```")
	for _, part := range strings.Split(doc, "\n### ")[1:] {
		num, _, _ := strings.Cut(part, " ")
		if !slices.Contains(sections, num) {
			continue
		}
		for i, m := range block.FindAllStringSubmatch(part, -1) {
			out = append(out, example{name: fmt.Sprintf("§%s #%d", num, i+1), text: m[1]})
		}
	}
	return out
}

// compareKeys reports where got lacks a key of want or holds another value, and where got
// has a key want lacks with a non-empty value.
func compareKeys(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want an object", path, got)}
		}
		var out []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: missing (want %v)", path, k, wv))
				continue
			}
			out = append(out, compareKeys(wv, gv, path+"."+k)...)
		}
		for k, gv := range g {
			if _, ok := w[k]; !ok && !empty(gv) {
				out = append(out, fmt.Sprintf("%s.%s: unexpected %v", path, k, gv))
			}
		}
		slices.Sort(out)
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, compareKeys(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if diff := cmp.Diff(want, got); diff != "" {
			return []string{fmt.Sprintf("%s: (-want +got)\n%s", path, diff)}
		}
		return nil
	}
}

// empty reports whether v is a JSON zero value: null, "", 0, false, {} or [] (recursively).
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case float64:
		return v == 0
	case bool:
		return !v
	case map[string]any:
		for _, x := range v {
			if !empty(x) {
				return false
			}
		}
		return true
	case []any:
		return len(v) == 0
	}
	return false
}

func toMap(tb testing.TB, obj any) map[string]any {
	tb.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		v = v.(map[string]any)[k]
	}
	return v
}
