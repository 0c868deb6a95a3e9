package agones

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/usher-gg/usher/contract"
)

// Client-side rate limits NewClient applies when the rest.Config sets none (client-go's
// own default, 5 requests per second, would throttle allocations long before Agones does).
const (
	DefaultQPS   = 100
	DefaultBurst = 200
)

// Client talks to Agones through a Kubernetes API server: it creates GameServerAllocations
// and lists and watches GameServers. It is safe for concurrent use.
type Client struct {
	agones     *rest.RESTClient // agones.dev/v1
	allocation *rest.RESTClient // allocation.agones.dev/v1
}

// NewClient returns a client for the cluster cfg points at (rest.InClusterConfig, a
// kubeconfig, or just a Host such as an httptest server's URL). Requests and responses are
// JSON; responses are decoded leniently, so fields this package does not know are ignored.
func NewClient(cfg *rest.Config) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("agones client: nil rest config")
	}
	_, codecs := newCodecs()
	base := rest.CopyConfig(cfg)
	if base.QPS == 0 {
		base.QPS = DefaultQPS
	}
	if base.Burst == 0 {
		base.Burst = DefaultBurst
	}
	base.APIPath = "/apis"
	base.ContentType = runtime.ContentTypeJSON
	base.AcceptContentTypes = runtime.ContentTypeJSON
	base.NegotiatedSerializer = codecs.WithoutConversion()
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("agones client: %w", err)
	}
	restClient := func(gv schema.GroupVersion) (*rest.RESTClient, error) {
		c := rest.CopyConfig(base)
		c.GroupVersion = &gv
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	c := &Client{}
	if c.agones, err = restClient(GroupVersion); err != nil {
		return nil, fmt.Errorf("agones client: %w", err)
	}
	if c.allocation, err = restClient(AllocationGroupVersion); err != nil {
		return nil, fmt.Errorf("agones client: %w", err)
	}
	return c, nil
}

// NewClientForURL returns a client for the API server at url with no credentials: for
// tests against an httptest server (see package agonestest) or a local proxy.
func NewClientForURL(url string) (*Client, error) {
	return NewClient(&rest.Config{Host: url})
}

// Allocate creates a GameServerAllocation in namespace:
// POST /apis/allocation.agones.dev/v1/namespaces/{namespace}/gameserverallocations.
//
// Agones answers 201 for every allocation it processed, so a nil error says nothing about
// the outcome: check Status.State (Allocated, UnAllocated or Contention), and for Allocated
// check that list and counter actions really happened, since values past capacity are
// dropped silently. A 422 (invalid allocation, e.g. a bad label value) comes back as an
// error wrapping the *errors.StatusError with Agones' message (apierrors.IsInvalid
// reports it); a 500 (plain text) as an error carrying its body.
func (c *Client) Allocate(ctx context.Context, namespace string, gsa *GameServerAllocation) (*GameServerAllocation, error) {
	if namespace == "" {
		return nil, errors.New("allocate: empty namespace")
	}
	out := &GameServerAllocation{}
	err := c.allocation.Post().
		Namespace(namespace).
		Resource(GameServerAllocationResource.Resource).
		Body(gsa).
		Do(ctx).
		Into(out)
	if err != nil {
		return nil, fmt.Errorf("allocate in namespace %s: %w", namespace, err)
	}
	if out.Status.State == "" {
		return nil, fmt.Errorf("allocate in namespace %s: response has no status.state", namespace)
	}
	return out, nil
}

// Informer index names of NewGameServerInformer.
const (
	// IndexByRoom indexes GameServers by the value of their room label
	// (contract.LabelRoom). The label stays on a GameServer after its room ends (Agones
	// never removes labels), so check the state of what the index returns.
	IndexByRoom = "room"
	// IndexByFleet indexes GameServers by "namespace/fleet" (label agones.dev/fleet).
	IndexByFleet = "fleet"
)

// RoomIndexFunc is the IndexByRoom index function.
func RoomIndexFunc(obj any) ([]string, error) {
	gs, ok := obj.(*GameServer)
	if !ok {
		return nil, nil
	}
	if room := gs.Labels[contract.LabelRoom]; room != "" {
		return []string{room}, nil
	}
	return nil, nil
}

// FleetIndexFunc is the IndexByFleet index function.
func FleetIndexFunc(obj any) ([]string, error) {
	gs, ok := obj.(*GameServer)
	if !ok {
		return nil, nil
	}
	if fleet := gs.Labels[LabelFleet]; fleet != "" {
		return []string{FleetKey(gs.Namespace, fleet)}, nil
	}
	return nil, nil
}

// FleetKey is the IndexByFleet key of a Fleet.
func FleetKey(namespace, fleet string) string { return namespace + "/" + fleet }

// NewGameServerInformer returns an informer over the GameServers of namespace (all
// namespaces when it is "") that match labelSelector ("" for all). Its store holds
// *GameServer (managed fields stripped), indexed by namespace, IndexByRoom and
// IndexByFleet. It lists and watches /apis/agones.dev/v1/.../gameservers through c with
// plain GET requests, decoding JSON straight into this package's types (leniently: the
// CRD-defaulted immutableReplicas and any field this package lacks are ignored), the way
// a generated typed client would. resync 0 disables periodic resyncs. Start it with
// RunWithContext.
func NewGameServerInformer(c *Client, namespace string, resync time.Duration, labelSelector string) cache.SharedIndexInformer {
	request := func(opts metav1.ListOptions) *rest.Request {
		opts.LabelSelector = labelSelector
		r := c.agones.Get().Namespace(namespace).Resource(GameServerResource.Resource).
			VersionedParams(&opts, metav1.ParameterCodec)
		if opts.TimeoutSeconds != nil {
			r = r.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
		}
		return r
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &GameServerList{}
			if err := request(opts).Do(ctx).Into(list); err != nil {
				return nil, err
			}
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.Watch = true
			return request(opts).Watch(ctx)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, &GameServer{}, cache.SharedIndexInformerOptions{
		ResyncPeriod: resync,
		Indexers: cache.Indexers{
			cache.NamespaceIndex: cache.MetaNamespaceIndexFunc,
			IndexByRoom:          RoomIndexFunc,
			IndexByFleet:         FleetIndexFunc,
		},
		ObjectDescription: "agones.dev/v1 GameServers",
	})
	// Managed fields are large and never read; dropping them keeps the cache small.
	_ = inf.SetTransform(stripManagedFields)
	return inf
}

// stripManagedFields is the informer's transform. It may modify obj: the informer hands
// it freshly decoded objects nobody else holds.
func stripManagedFields(obj any) (any, error) {
	if gs, ok := obj.(*GameServer); ok {
		gs.ManagedFields = nil
	}
	return obj, nil
}
