package agones

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// API groups and versions.
var (
	// GroupVersion is agones.dev/v1: GameServers and Fleets (CRDs).
	GroupVersion = schema.GroupVersion{Group: "agones.dev", Version: "v1"}
	// AllocationGroupVersion is allocation.agones.dev/v1: GameServerAllocations, served by
	// Agones' extensions server as an aggregated API (no CRD, create only).
	AllocationGroupVersion = schema.GroupVersion{Group: "allocation.agones.dev", Version: "v1"}
	// AutoscalingGroupVersion is autoscaling.agones.dev/v1: FleetAutoscalers (CRD).
	AutoscalingGroupVersion = schema.GroupVersion{Group: "autoscaling.agones.dev", Version: "v1"}
)

// Resources (plural names, as in URLs and RBAC rules).
var (
	GameServerResource           = GroupVersion.WithResource("gameservers")
	FleetResource                = GroupVersion.WithResource("fleets")
	GameServerAllocationResource = AllocationGroupVersion.WithResource("gameserverallocations")
	FleetAutoscalerResource      = AutoscalingGroupVersion.WithResource("fleetautoscalers")
)

// Kinds.
var (
	GameServerKind           = GroupVersion.WithKind("GameServer")
	GameServerListKind       = GroupVersion.WithKind("GameServerList")
	FleetKind                = GroupVersion.WithKind("Fleet")
	GameServerAllocationKind = AllocationGroupVersion.WithKind("GameServerAllocation")
	FleetAutoscalerKind      = AutoscalingGroupVersion.WithKind("FleetAutoscaler")
)

// AddToScheme registers the types of this package, under their three API groups, with s.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &GameServer{}, &GameServerList{}, &Fleet{}, &FleetList{})
	s.AddKnownTypes(AllocationGroupVersion, &GameServerAllocation{}, &GameServerAllocationList{})
	s.AddKnownTypes(AutoscalingGroupVersion, &FleetAutoscaler{}, &FleetAutoscalerList{})
	for _, gv := range []schema.GroupVersion{GroupVersion, AllocationGroupVersion, AutoscalingGroupVersion} {
		metav1.AddToGroupVersion(s, gv)
	}
	return nil
}

// newCodecs returns a scheme with this package's types and its codecs. Its JSON decoder
// is not strict: unknown fields (such as the CRD-defaulted spec.immutableReplicas, or
// fields added by later Agones versions) are ignored.
func newCodecs() (*runtime.Scheme, serializer.CodecFactory) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		panic(err) // AddToScheme cannot fail
	}
	return s, serializer.NewCodecFactory(s)
}

// SetGroupVersionKind sets apiVersion and kind on obj from its Go type, as the API server
// would report them. It is a no-op for types this package does not define.
func SetGroupVersionKind(obj runtime.Object) {
	var gvk schema.GroupVersionKind
	switch obj.(type) {
	case *GameServer:
		gvk = GameServerKind
	case *GameServerList:
		gvk = GameServerListKind
	case *Fleet:
		gvk = FleetKind
	case *GameServerAllocation:
		gvk = GameServerAllocationKind
	case *FleetAutoscaler:
		gvk = FleetAutoscalerKind
	default:
		return
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
}
