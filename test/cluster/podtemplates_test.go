package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// podTemplate is one pod template found in the rendered manifests.
type podTemplate struct {
	owner *unstructured.Unstructured
	path  []string // where the template sits in owner
	tmpl  corev1.PodTemplateSpec
}

func (p podTemplate) String() string { return ref(p.owner) }

// templatePaths says where each kind that makes pods keeps its pod template. A kind with a
// spec.template that is not listed here fails podTemplates, so no template goes unchecked.
var templatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
	// Agones: a Fleet (and a GameServerSet) holds a GameServer template, whose spec.template is
	// the pod template; a GameServer holds the pod template directly.
	"Fleet":         {"spec", "template", "spec", "template"},
	"GameServerSet": {"spec", "template", "spec", "template"},
	"GameServer":    {"spec", "template"},
}

// podTemplates returns every pod template in objs.
func podTemplates(tb testing.TB, objs []*unstructured.Unstructured) []podTemplate {
	tb.Helper()
	var out []podTemplate
	for _, o := range objs {
		path, ok := templatePaths[o.GetKind()]
		if !ok {
			if _, has, _ := unstructured.NestedMap(o.Object, "spec", "template"); has {
				tb.Fatalf("%s has a spec.template but podTemplates does not know its kind: add it to templatePaths", ref(o))
			}
			continue
		}
		m, found, err := unstructured.NestedMap(o.Object, path...)
		if err != nil || !found {
			tb.Fatalf("%s: no pod template at %v (%v)", ref(o), path, err)
		}
		var t corev1.PodTemplateSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(m, &t, true); err != nil {
			tb.Fatalf("%s: pod template: %v", ref(o), err)
		}
		out = append(out, podTemplate{owner: o, path: path, tmpl: t})
	}
	return out
}

// allContainers returns the init containers then the containers of a pod spec.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var cs []*corev1.Container
	for i := range spec.InitContainers {
		cs = append(cs, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		cs = append(cs, &spec.Containers[i])
	}
	return cs
}
