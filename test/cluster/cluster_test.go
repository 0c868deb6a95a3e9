package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// fieldManager is the server-side apply field manager of these tests.
const fieldManager = "usher-cluster-test"

// howToBuild is what a developer without the binaries is told.
const howToBuild = "build them with `go tool task cluster:bins` (or hack/cluster-bins.sh), and fetch the Agones CRDs with `go tool task agones:crds` or point USHER_AGONES_CRDS at a CRD file"

// cacheDir is where the hack/ scripts put what the tier needs: $USHER_CLUSTER_BIN, else
// <user cache dir>/usher-cluster-bin, as in hack/cluster-bins.sh.
func cacheDir() string {
	if d := os.Getenv("USHER_CLUSTER_BIN"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ".bin"
	}
	return filepath.Join(cache, "usher-cluster-bin")
}

// binDir holds kube-apiserver and etcd: $KUBEBUILDER_ASSETS (envtest's own variable), else
// cacheDir.
func binDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return cacheDir()
}

// agonesCRDs is the file of Agones CRDs to install: $USHER_AGONES_CRDS (a relative path is taken
// from the repository root, so CI can say ../shared/agones/crds.yaml), else
// <cacheDir>/agones-crds.yaml as written by hack/agones-crds.sh.
func agonesCRDs(tb testing.TB) string {
	p := os.Getenv("USHER_AGONES_CRDS")
	if p == "" {
		return filepath.Join(cacheDir(), "agones-crds.yaml")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(repoRoot(tb), p)
	}
	return p
}

// testCluster is a running kube-apiserver + etcd with the Agones CRDs installed, and clients
// for a cluster admin.
type testCluster struct {
	warnings *warningRecorder
	env      *envtest.Environment
	cfg      *rest.Config
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
}

var (
	clusterOnce sync.Once
	clusterErr  error
	missing     string // what is missing, when the binaries or CRDs are not there
	theCluster  *testCluster
)

// requireCluster starts the shared control plane on first use. Without the binaries or the
// CRDs it skips the test, or fails it when the CI variable is set: CI must never pass by skipping.
func requireCluster(t *testing.T) *testCluster {
	t.Helper()
	clusterOnce.Do(func() {
		var lacks []string
		for _, b := range []string{"kube-apiserver", "etcd"} {
			if _, err := os.Stat(filepath.Join(binDir(), b)); err != nil {
				lacks = append(lacks, filepath.Join(binDir(), b))
			}
		}
		if _, err := os.Stat(agonesCRDs(t)); err != nil {
			lacks = append(lacks, agonesCRDs(t))
		}
		if len(lacks) > 0 {
			missing = strings.Join(lacks, ", ")
			return
		}
		theCluster, clusterErr = startCluster(agonesCRDs(t))
	})
	switch {
	case missing != "" && os.Getenv("CI") != "":
		t.Fatalf("CI needs the real-API-server tier, but these are missing: %s; %s", missing, howToBuild)
	case missing != "":
		t.Skipf("no API server binaries or Agones CRDs (missing %s); %s", missing, howToBuild)
	case clusterErr != nil:
		t.Fatalf("start kube-apiserver and etcd from %s: %v", binDir(), clusterErr)
	}
	return theCluster
}

func startCluster(crdFile string) (*testCluster, error) {
	logf.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	env := &envtest.Environment{
		BinaryAssetsDirectory:    binDir(),
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	api := env.ControlPlane.GetAPIServer()
	// RBAC, so SubjectAccessReviews answer as a real cluster would; the test's own user is a
	// member of system:masters. PodSecurity is among the default admission plugins.
	api.Configure().Set("authorization-mode", "RBAC")
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}
	c := &testCluster{env: env, cfg: cfg, warnings: &warningRecorder{}}
	cfg.WarningHandler = c.warnings
	if c.kube, err = kubernetes.NewForConfig(cfg); err == nil {
		c.dyn, err = dynamic.NewForConfig(cfg)
	}
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.kube.Discovery()))
	if err := c.installCRDs(crdFile); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("install Agones CRDs from %s: %w", crdFile, err)
	}
	return c, nil
}

func stopCluster() error {
	if theCluster == nil {
		return nil
	}
	return theCluster.env.Stop()
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs server-side applies every CustomResourceDefinition in file (other documents, as
// in Agones' install.yaml, are ignored) and waits until each is Established. Three Agones CRDs
// are bigger than the 256 KiB a client-side apply annotation may hold: server-side apply has no
// such annotation.
func (c *testCluster) installCRDs(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var names []string
	for _, doc := range splitYAML(data) {
		objs, err := decodeObjectsErr(doc)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			body, err := o.MarshalJSON()
			if err != nil {
				return err
			}
			if _, err := c.dyn.Resource(crdGVR).Patch(ctx, o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
				FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: "Strict",
			}); err != nil {
				return fmt.Errorf("apply CRD %s: %w", o.GetName(), err)
			}
			names = append(names, o.GetName())
		}
	}
	if len(names) == 0 {
		return errors.New("no CustomResourceDefinition in the file")
	}
	for _, name := range names {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			crd, err := c.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, cond := range conds {
				m, _ := cond.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not Established: %w", name, err)
		}
	}
	c.mapper.Reset()
	return nil
}

// resourceFor maps an object's kind to its resource, refreshing discovery once if the kind is new.
func (c *testCluster) resourceFor(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// applyStrict server-side applies o with strict field validation: an unknown, misspelt or
// duplicated field is an error, not something the server quietly drops.
func (c *testCluster) applyStrict(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	ri, err := c.resourceFor(o)
	if err != nil {
		return fmt.Errorf("%s: %w", ref(o), err)
	}
	body, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts); err != nil {
		return fmt.Errorf("server-side apply %s: %w", ref(o), err)
	}
	return nil
}

var (
	appliedMu sync.Mutex
	applied   = map[string]error{}
)

// applyOverlay applies a rendered overlay once per test binary (later calls return the first
// result), namespaces first.
func (c *testCluster) applyOverlay(t *testing.T, overlay string) {
	t.Helper()
	appliedMu.Lock()
	defer appliedMu.Unlock()
	err, done := applied[overlay]
	if !done {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var errs []error
		objs := objectsOf(t, overlay)
		for _, pass := range []func(*unstructured.Unstructured) bool{
			func(o *unstructured.Unstructured) bool { return o.GetKind() == "Namespace" },
			func(o *unstructured.Unstructured) bool { return o.GetKind() != "Namespace" },
		} {
			for _, o := range objs {
				if pass(o) {
					errs = append(errs, c.applyStrict(ctx, o, false))
				}
			}
		}
		err = errors.Join(errs...)
		applied[overlay] = err
	}
	if err != nil {
		t.Fatalf("apply overlay %s: %v", overlay, err)
	}
}

// ensureNamespace creates (or updates) a namespace with these labels.
func (c *testCluster) ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(labels)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.applyStrict(ctx, ns, false); err != nil {
		t.Fatal(err)
	}
}

// isInvalidOrBadRequest reports whether err is a validation refusal from the server.
func isInvalidOrBadRequest(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}

// warningRecorder keeps the API server's warnings (such as PodSecurity's "would violate" for a
// namespace's warn level) so tests can look at them.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns the warnings since the last call and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.msgs
	w.msgs = nil
	return msgs
}
