package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// usherSA is Usher's identity as the API server sees it: the ServiceAccount's user and groups.
var usherSA = struct {
	user   string
	groups []string
}{
	user:   "system:serviceaccount:usher-system:usher",
	groups: []string{"system:serviceaccounts", "system:serviceaccounts:usher-system", "system:authenticated"},
}

type access struct {
	verb, group, resource, namespace string
}

func (a access) String() string {
	ns := a.namespace
	if ns == "" {
		ns = "(all namespaces)"
	}
	return fmt.Sprintf("%s %s.%s in %s", a.verb, a.resource, a.group, ns)
}

// TestUsherRBAC asks the API server, with SubjectAccessReviews against the applied Role and
// RoleBinding, what Usher's ServiceAccount may do: exactly allocate and watch game servers in
// usher-games, nothing more (docs/security.md, Cluster).
func TestUsherRBAC(t *testing.T) {
	c := requireCluster(t)
	c.applyOverlay(t, "kind")

	allowed := []access{
		{"create", "allocation.agones.dev", "gameserverallocations", "usher-games"},
		{"get", "agones.dev", "gameservers", "usher-games"},
		{"list", "agones.dev", "gameservers", "usher-games"},
		{"watch", "agones.dev", "gameservers", "usher-games"},
		{"get", "agones.dev", "fleets", "usher-games"},
		{"list", "agones.dev", "fleets", "usher-games"},
		{"watch", "agones.dev", "fleets", "usher-games"},
	}
	denied := []access{
		// No Secrets anywhere, not even its own namespace's JWT key (it comes as an env var).
		{"get", "", "secrets", "usher-games"},
		{"list", "", "secrets", "usher-games"},
		{"get", "", "secrets", "usher-system"},
		{"list", "", "secrets", "usher-system"},
		{"watch", "", "secrets", ""},
		// No writes to game servers: rooms change only through allocations.
		{"delete", "agones.dev", "gameservers", "usher-games"},
		{"deletecollection", "agones.dev", "gameservers", "usher-games"},
		{"create", "agones.dev", "gameservers", "usher-games"},
		{"update", "agones.dev", "gameservers", "usher-games"},
		{"patch", "agones.dev", "gameservers", "usher-games"},
		{"update", "agones.dev", "fleets", "usher-games"},
		{"patch", "agones.dev", "fleets/scale", "usher-games"},
		{"delete", "agones.dev", "fleets", "usher-games"},
		{"create", "autoscaling.agones.dev", "fleetautoscalers", "usher-games"},
		{"get", "allocation.agones.dev", "gameserverallocations", "usher-games"},
		// Nothing in other namespaces, nor cluster-wide.
		{"create", "allocation.agones.dev", "gameserverallocations", "default"},
		{"list", "agones.dev", "gameservers", "default"},
		{"watch", "agones.dev", "gameservers", "kube-system"},
		{"list", "agones.dev", "gameservers", ""},
		{"create", "allocation.agones.dev", "gameserverallocations", ""},
		{"list", "agones.dev", "gameservers", "usher-system"},
		// No pods, no exec, no RBAC of its own.
		{"create", "", "pods", "usher-games"},
		{"create", "", "pods/exec", "usher-games"},
		{"list", "", "pods", "usher-games"},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "usher-games"},
		{"escalate", "rbac.authorization.k8s.io", "roles", "usher-games"},
		{"get", "", "configmaps", "usher-system"},
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The RBAC authorizer reads Roles from an informer: wait until it has seen ours.
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, _, err := c.can(ctx, allowed[0])
		return ok, err
	}); err != nil {
		t.Fatalf("Usher never became allowed to %v: %v", allowed[0], err)
	}

	for _, a := range allowed {
		ok, reason, err := c.can(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("Usher cannot %v (%s), but needs to", a, reason)
		}
	}
	for _, a := range denied {
		ok, reason, err := c.can(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("Usher can %v (%s), and must not", a, reason)
		}
	}
}

// can asks the API server whether Usher's ServiceAccount may do a.
func (c *testCluster) can(ctx context.Context, a access) (bool, string, error) {
	sar := &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   usherSA.user,
			Groups: usherSA.groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace,
			},
		},
	}
	if r, sub, ok := cutSub(a.resource); ok {
		sar.Spec.ResourceAttributes.Resource, sar.Spec.ResourceAttributes.Subresource = r, sub
	}
	got, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview %v: %w", a, err)
	}
	return got.Status.Allowed, got.Status.Reason, nil
}

func cutSub(resource string) (string, string, bool) {
	for i := range resource {
		if resource[i] == '/' {
			return resource[:i], resource[i+1:], true
		}
	}
	return resource, "", false
}
