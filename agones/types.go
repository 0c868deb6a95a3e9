package agones

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The JSON keys below are spelt exactly as Agones spells them (agones.dev/v1,
// allocation.agones.dev/v1, autoscaling.agones.dev/v1); schema_test.go checks the types
// against the CRD schemas. Fields Agones reports as null when unset are slices, maps or
// pointers, so null decodes to nil. Fields whose zero value the CRD would reject (a port
// policy of "", a failureThreshold of 0) are omitted when zero.
//
// Every struct type below is tagged +k8s:deepcopy-gen=true, and the eight kinds also
// +k8s:deepcopy-gen:interfaces=...runtime.Object, for zz_generated.deepcopy.go: tag a new type
// the same way and run hack/update-codegen.sh. The types are tagged one by one, not the package
// as a whole, so that Client gets no deep copy.

// GameServerState is the state of a GameServer (status.state).
type GameServerState string

// States of a GameServer. Only Ready and Allocated servers can be allocated; Shutdown,
// Error and Unhealthy are terminal.
const (
	GameServerStatePortAllocation GameServerState = "PortAllocation"
	GameServerStateCreating       GameServerState = "Creating"
	GameServerStateStarting       GameServerState = "Starting"
	GameServerStateScheduled      GameServerState = "Scheduled"
	GameServerStateRequestReady   GameServerState = "RequestReady"
	GameServerStateReady          GameServerState = "Ready"
	GameServerStateReserved       GameServerState = "Reserved"
	GameServerStateAllocated      GameServerState = "Allocated"
	GameServerStateShutdown       GameServerState = "Shutdown"
	GameServerStateError          GameServerState = "Error"
	GameServerStateUnhealthy      GameServerState = "Unhealthy"
)

// GameServerStates lists every GameServer state, in lifecycle order.
var GameServerStates = []GameServerState{
	GameServerStatePortAllocation, GameServerStateCreating, GameServerStateStarting,
	GameServerStateScheduled, GameServerStateRequestReady, GameServerStateReady,
	GameServerStateReserved, GameServerStateAllocated, GameServerStateShutdown,
	GameServerStateError, GameServerStateUnhealthy,
}

// Terminal reports whether a GameServer in state s can never serve again.
func (s GameServerState) Terminal() bool {
	return s == GameServerStateShutdown || s == GameServerStateError || s == GameServerStateUnhealthy
}

// PortPolicy says how a GameServer port is exposed (spec.ports[].portPolicy).
type PortPolicy string

// Port policies. Dynamic is Agones' default.
const (
	// PortPolicyDynamic: Agones picks a free host port and fills in hostPort; clients use
	// status.address and status.ports[].port.
	PortPolicyDynamic PortPolicy = "Dynamic"
	// PortPolicyStatic: the spec sets hostPort.
	PortPolicyStatic PortPolicy = "Static"
	// PortPolicyPassthrough: host port = container port, chosen dynamically.
	PortPolicyPassthrough PortPolicy = "Passthrough"
	// PortPolicyNone (Beta): no host port; the status port is the containerPort, reachable
	// on the pod IP only.
	PortPolicyNone PortPolicy = "None"
)

// Protocols of a GameServer port. Agones defaults to UDP, so WebSocket servers must say TCP.
const (
	ProtocolTCP    corev1.Protocol = corev1.ProtocolTCP
	ProtocolUDP    corev1.Protocol = corev1.ProtocolUDP
	ProtocolTCPUDP corev1.Protocol = "TCPUDP"
)

// AddressTypePodIP is the status.addresses type Agones uses for the pod's IP, beside the
// node's ExternalIP, InternalIP, ExternalDNS, InternalDNS and Hostname.
const AddressTypePodIP corev1.NodeAddressType = "PodIP"

// SchedulingStrategy is Packed (Agones' default) or Distributed.
type SchedulingStrategy string

// Scheduling strategies.
const (
	Packed      SchedulingStrategy = "Packed"
	Distributed SchedulingStrategy = "Distributed"
)

// Labels and annotations Agones sets on GameServers.
const (
	// LabelFleet names the Fleet a GameServer belongs to.
	LabelFleet = "agones.dev/fleet"
	// LabelGameServerSet names its GameServerSet.
	LabelGameServerSet = "agones.dev/gameserverset"
	// AnnotationLastAllocated is set (RFC3339Nano) by every allocation, re-allocations included.
	AnnotationLastAllocated = "agones.dev/last-allocated"
	// FinalizerController is the finalizer the Agones controller removes on deletion.
	FinalizerController = "agones.dev/controller"
)

// ---- GameServer (agones.dev/v1) ----

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// GameServer is one dedicated game server: a Pod plus its Agones state.
type GameServer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GameServerSpec   `json:"spec"`
	Status GameServerStatus `json:"status,omitzero"`
}

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// GameServerList is a list of GameServers, as the API server returns it.
type GameServerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []GameServer `json:"items"`
}

// +k8s:deepcopy-gen=true

// GameServerSpec is the subset of a GameServer's spec Usher uses. Agones also has
// scheduling, players (Alpha), eviction and the CRD-defaulted immutableReplicas; they are
// ignored on decoding.
type GameServerSpec struct {
	// Container is the game server container's name; required if the pod has several.
	Container string           `json:"container,omitempty"`
	Ports     []GameServerPort `json:"ports,omitempty"`
	Health    Health           `json:"health,omitzero"`
	SdkServer SdkServer        `json:"sdkServer,omitzero"`
	// Counters and Lists (Beta CountsAndLists) are copied into status on creation; their
	// keys are fixed from then on.
	Counters map[string]CounterStatus `json:"counters,omitempty"`
	Lists    map[string]ListStatus    `json:"lists,omitempty"`
	// Template is the pod template (required).
	Template corev1.PodTemplateSpec `json:"template"`
}

// +k8s:deepcopy-gen=true

// GameServerPort is one port of spec.ports.
type GameServerPort struct {
	Name       string     `json:"name,omitempty"`
	PortPolicy PortPolicy `json:"portPolicy,omitempty"`
	// Container opens the port; defaults to the game server container.
	Container     string          `json:"container,omitempty"`
	ContainerPort int32           `json:"containerPort,omitempty"`
	HostPort      int32           `json:"hostPort,omitempty"`
	Protocol      corev1.Protocol `json:"protocol,omitempty"`
}

// +k8s:deepcopy-gen=true

// Health configures health checking (spec.health). Agones defaults: 5, 3, 5.
type Health struct {
	Disabled            bool  `json:"disabled,omitempty"`
	PeriodSeconds       int32 `json:"periodSeconds,omitempty"`
	FailureThreshold    int32 `json:"failureThreshold,omitempty"`
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
}

// +k8s:deepcopy-gen=true

// SdkServer configures the SDK sidecar (spec.sdkServer).
type SdkServer struct {
	LogLevel string `json:"logLevel,omitempty"`
	GRPCPort int32  `json:"grpcPort,omitempty"`
	HTTPPort int32  `json:"httpPort,omitempty"`
}

// +k8s:deepcopy-gen=true

// CounterStatus is a Counter, in spec, status or an allocation result.
type CounterStatus struct {
	Count    int64 `json:"count"`
	Capacity int64 `json:"capacity"`
}

// +k8s:deepcopy-gen=true

// ListStatus is a List, in spec, status or an allocation result. Values are unique;
// capacity is at most 1000.
type ListStatus struct {
	Capacity int64    `json:"capacity"`
	Values   []string `json:"values,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerStatus is the subset of status Usher reads. Unset fields come back as null.
type GameServerStatus struct {
	State GameServerState `json:"state,omitempty"`
	// Ports holds the host port (the containerPort for portPolicy None); null before Scheduled.
	Ports []GameServerStatusPort `json:"ports,omitempty"`
	// Address is the node's best address (ExternalDNS > ExternalIP > InternalDNS > InternalIP).
	Address string `json:"address,omitempty"`
	// Addresses are the node's addresses plus one of type PodIP.
	Addresses []corev1.NodeAddress     `json:"addresses,omitempty"`
	NodeName  string                   `json:"nodeName,omitempty"`
	Counters  map[string]CounterStatus `json:"counters,omitempty"`
	Lists     map[string]ListStatus    `json:"lists,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerStatusPort is a port as reported in status.
type GameServerStatusPort struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
}

// ---- GameServerAllocation (allocation.agones.dev/v1) ----

// GameServerAllocationState is the outcome of an allocation (status.state).
type GameServerAllocationState string

// Allocation outcomes. Every one of them comes back with HTTP 201.
const (
	GameServerAllocationAllocated   GameServerAllocationState = "Allocated"
	GameServerAllocationUnAllocated GameServerAllocationState = "UnAllocated"
	GameServerAllocationContention  GameServerAllocationState = "Contention"
)

// Priority types and orders (spec.priorities, Fleet spec.priorities). For allocation,
// Ascending puts the least available capacity (capacity - count, or capacity -
// len(values)) first, i.e. the fullest server.
const (
	PriorityCounter = "Counter"
	PriorityList    = "List"
	Ascending       = "Ascending"
	Descending      = "Descending"
)

// Counter actions.
const (
	CounterIncrement = "Increment"
	CounterDecrement = "Decrement"
)

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// GameServerAllocation allocates a GameServer. It is create-only: the response carries the
// outcome in status and is not stored.
type GameServerAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GameServerAllocationSpec   `json:"spec"`
	Status GameServerAllocationStatus `json:"status,omitzero"`
}

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// GameServerAllocationList exists for the scheme; the API never lists allocations.
type GameServerAllocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []GameServerAllocation `json:"items"`
}

// +k8s:deepcopy-gen=true

// GameServerAllocationSpec says which GameServer to allocate and what to change on it.
type GameServerAllocationSpec struct {
	// Selectors are tried in order; the first that matches a GameServer wins.
	Selectors []GameServerSelector `json:"selectors,omitempty"`
	// Scheduling defaults to Packed. With Distributed (and CountsAndLists on), servers are
	// searched purely in Priorities order.
	Scheduling SchedulingStrategy `json:"scheduling,omitempty"`
	Priorities []Priority         `json:"priorities,omitempty"`
	// MetaPatch is merged into the GameServer's labels and annotations (never removing any).
	MetaPatch MetaPatch `json:"metadata,omitzero"`
	// Counters and Lists are actions applied to the allocated GameServer.
	Counters map[string]CounterAction `json:"counters,omitempty"`
	Lists    map[string]ListAction    `json:"lists,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerSelector is a label selector plus state, counter and list filters.
type GameServerSelector struct {
	metav1.LabelSelector `json:",inline"`
	// GameServerState defaults to Ready; only Ready and Allocated are valid.
	GameServerState *GameServerState `json:"gameServerState,omitempty"`
	// Counters and Lists filter on counts and available capacity; a key the GameServer
	// does not have does not match.
	Counters map[string]CounterSelector `json:"counters,omitempty"`
	Lists    map[string]ListSelector    `json:"lists,omitempty"`
}

// +k8s:deepcopy-gen=true

// CounterSelector filters on a Counter. For the max fields, 0 means no limit.
type CounterSelector struct {
	MinCount     int64 `json:"minCount"`
	MaxCount     int64 `json:"maxCount"`
	MinAvailable int64 `json:"minAvailable"`
	MaxAvailable int64 `json:"maxAvailable"`
}

// +k8s:deepcopy-gen=true

// ListSelector filters on a List. MaxAvailable 0 means no limit; ContainsValue "" means
// any.
type ListSelector struct {
	ContainsValue string `json:"containsValue"`
	MinAvailable  int64  `json:"minAvailable"`
	MaxAvailable  int64  `json:"maxAvailable"`
}

// +k8s:deepcopy-gen=true

// Priority orders the search by a Counter or List.
type Priority struct {
	Type  string `json:"type"`
	Key   string `json:"key"`
	Order string `json:"order,omitempty"`
}

// +k8s:deepcopy-gen=true

// MetaPatch is what an allocation adds to the GameServer's metadata. It is not ObjectMeta.
type MetaPatch struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// +k8s:deepcopy-gen=true

// CounterAction changes a Counter at allocation; the result is clamped to [0, capacity]
// silently.
type CounterAction struct {
	Action   string `json:"action,omitempty"`
	Amount   *int64 `json:"amount,omitempty"`
	Capacity *int64 `json:"capacity,omitempty"`
}

// +k8s:deepcopy-gen=true

// ListAction changes a List at allocation. Values past capacity are dropped silently, so
// check the result.
type ListAction struct {
	AddValues    []string `json:"addValues,omitempty"`
	DeleteValues []string `json:"deleteValues,omitempty"`
	Capacity     *int64   `json:"capacity,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerAllocationStatus is the outcome. GameServerName and Source are always present
// ("" unless Allocated); the rest only for Allocated.
type GameServerAllocationStatus struct {
	State          GameServerAllocationState `json:"state"`
	GameServerName string                    `json:"gameServerName"`
	Ports          []GameServerStatusPort    `json:"ports,omitempty"`
	Address        string                    `json:"address,omitempty"`
	Addresses      []corev1.NodeAddress      `json:"addresses,omitempty"`
	NodeName       string                    `json:"nodeName,omitempty"`
	// Source is "local", or a remote allocator endpoint in multi-cluster allocation.
	Source string `json:"source"`
	// Metadata holds the GameServer's labels and annotations after the allocation.
	Metadata *GameServerMetadata      `json:"metadata,omitempty"`
	Counters map[string]CounterStatus `json:"counters,omitempty"`
	Lists    map[string]ListStatus    `json:"lists,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerMetadata is the labels and annotations of an allocated GameServer.
type GameServerMetadata struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ---- Fleet (agones.dev/v1) ----

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Fleet keeps a number of GameServers from one template.
type Fleet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FleetSpec   `json:"spec"`
	Status FleetStatus `json:"status,omitzero"`
}

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FleetList is a list of Fleets.
type FleetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Fleet `json:"items"`
}

// +k8s:deepcopy-gen=true

// FleetSpec is a Fleet's spec. A FleetAutoscaler owns Replicas when there is one.
type FleetSpec struct {
	Replicas   int32                     `json:"replicas"`
	Scheduling SchedulingStrategy        `json:"scheduling,omitempty"`
	Strategy   appsv1.DeploymentStrategy `json:"strategy,omitzero"`
	Template   GameServerTemplateSpec    `json:"template"`
	// Priorities order scale-down (Beta CountsAndLists).
	Priorities []Priority `json:"priorities,omitempty"`
}

// +k8s:deepcopy-gen=true

// GameServerTemplateSpec is the GameServer template of a Fleet.
type GameServerTemplateSpec struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              GameServerSpec `json:"spec"`
}

// +k8s:deepcopy-gen=true

// FleetStatus is a Fleet's status.
type FleetStatus struct {
	Replicas          int32                              `json:"replicas"`
	ReadyReplicas     int32                              `json:"readyReplicas"`
	ReservedReplicas  int32                              `json:"reservedReplicas"`
	AllocatedReplicas int32                              `json:"allocatedReplicas"`
	Counters          map[string]AggregatedCounterStatus `json:"counters,omitempty"`
	Lists             map[string]AggregatedListStatus    `json:"lists,omitempty"`
}

// +k8s:deepcopy-gen=true

// AggregatedCounterStatus sums a Counter over a Fleet's GameServers.
type AggregatedCounterStatus struct {
	AllocatedCount    int64 `json:"allocatedCount"`
	AllocatedCapacity int64 `json:"allocatedCapacity"`
	Count             int64 `json:"count"`
	Capacity          int64 `json:"capacity"`
}

// +k8s:deepcopy-gen=true

// AggregatedListStatus sums a List over a Fleet's GameServers.
type AggregatedListStatus struct {
	AllocatedCount    int64 `json:"allocatedCount"`
	AllocatedCapacity int64 `json:"allocatedCapacity"`
	Count             int64 `json:"count"`
	Capacity          int64 `json:"capacity"`
}

// ---- FleetAutoscaler (autoscaling.agones.dev/v1) ----

// FleetAutoscaler policy and sync types Usher uses.
const (
	FleetAutoscalerPolicyBuffer = "Buffer"
	FleetAutoscalerSyncFixed    = "FixedInterval"
)

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FleetAutoscaler scales a Fleet in the same namespace.
type FleetAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FleetAutoscalerSpec   `json:"spec"`
	Status FleetAutoscalerStatus `json:"status,omitzero"`
}

// +k8s:deepcopy-gen=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FleetAutoscalerList is a list of FleetAutoscalers.
type FleetAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []FleetAutoscaler `json:"items"`
}

// +k8s:deepcopy-gen=true

// FleetAutoscalerSpec names the Fleet and the policy.
type FleetAutoscalerSpec struct {
	FleetName string                `json:"fleetName"`
	Policy    FleetAutoscalerPolicy `json:"policy"`
	// Sync defaults to FixedInterval every 30 seconds.
	Sync *FleetAutoscalerSync `json:"sync,omitempty"`
}

// +k8s:deepcopy-gen=true

// FleetAutoscalerPolicy is the scaling policy; Usher uses Buffer.
type FleetAutoscalerPolicy struct {
	Type   string        `json:"type"`
	Buffer *BufferPolicy `json:"buffer,omitempty"`
}

// +k8s:deepcopy-gen=true

// BufferPolicy keeps BufferSize non-Allocated GameServers (a number or "N%").
type BufferPolicy struct {
	MaxReplicas int32              `json:"maxReplicas"`
	MinReplicas int32              `json:"minReplicas,omitempty"`
	BufferSize  intstr.IntOrString `json:"bufferSize"`
}

// +k8s:deepcopy-gen=true

// FleetAutoscalerSync says how often the autoscaler runs.
type FleetAutoscalerSync struct {
	Type          string            `json:"type"`
	FixedInterval FixedIntervalSync `json:"fixedInterval"`
}

// +k8s:deepcopy-gen=true

// FixedIntervalSync is the period of a FixedInterval sync.
type FixedIntervalSync struct {
	Seconds int32 `json:"seconds"`
}

// +k8s:deepcopy-gen=true

// FleetAutoscalerStatus is a FleetAutoscaler's status.
type FleetAutoscalerStatus struct {
	CurrentReplicas int32        `json:"currentReplicas"`
	DesiredReplicas int32        `json:"desiredReplicas"`
	LastScaleTime   *metav1.Time `json:"lastScaleTime"`
	AbleToScale     bool         `json:"ableToScale"`
	ScalingLimited  bool         `json:"scalingLimited"`
}

// Compile-time checks that every type the scheme holds is a runtime.Object (DeepCopyObject comes
// from the +k8s:deepcopy-gen:interfaces tags).
var (
	_ runtime.Object = (*GameServer)(nil)
	_ runtime.Object = (*GameServerList)(nil)
	_ runtime.Object = (*GameServerAllocation)(nil)
	_ runtime.Object = (*GameServerAllocationList)(nil)
	_ runtime.Object = (*Fleet)(nil)
	_ runtime.Object = (*FleetList)(nil)
	_ runtime.Object = (*FleetAutoscaler)(nil)
	_ runtime.Object = (*FleetAutoscalerList)(nil)
)
