package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// GameServer states, as the SDK reports them in Status.State.
const (
	StatePortAllocation = "PortAllocation"
	StateCreating       = "Creating"
	StateStarting       = "Starting"
	StateScheduled      = "Scheduled"
	StateRequestReady   = "RequestReady"
	StateReady          = "Ready"
	StateReserved       = "Reserved"
	StateAllocated      = "Allocated"
	StateShutdown       = "Shutdown"
	StateError          = "Error"
	StateUnhealthy      = "Unhealthy"
)

// GameServer is the SDK's view of the GameServer the sidecar serves (swagger sdkGameServer):
// metadata, the health part of the spec, and the status. The gateway encodes it as
// protobuf-JSON with proto field names (object_meta, creation_timestamp, …); decoding also
// accepts the lowerCamel names, in case a gateway is configured the other way.
type GameServer struct {
	ObjectMeta ObjectMeta `json:"object_meta"`
	Spec       Spec       `json:"spec"`
	Status     Status     `json:"status"`
}

// UnmarshalJSON accepts object_meta and objectMeta.
func (g *GameServer) UnmarshalJSON(b []byte) error {
	type plain GameServer
	var v struct {
		plain
		Camel *ObjectMeta `json:"objectMeta"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*g = GameServer(v.plain)
	if v.Camel != nil && !hasKey(b, "object_meta") {
		g.ObjectMeta = *v.Camel
	}
	return nil
}

// ObjectMeta is the part of the Kubernetes object metadata the SDK exposes. Timestamps are
// Unix seconds; DeletionTimestamp is 0 unless the GameServer is being deleted.
type ObjectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	UID               string            `json:"uid"`
	ResourceVersion   string            `json:"resource_version"`
	Generation        Int64             `json:"generation"`
	CreationTimestamp Int64             `json:"creation_timestamp"`
	DeletionTimestamp Int64             `json:"deletion_timestamp"`
	Annotations       map[string]string `json:"annotations"`
	Labels            map[string]string `json:"labels"`
}

// UnmarshalJSON accepts the proto names and their lowerCamel forms.
func (m *ObjectMeta) UnmarshalJSON(b []byte) error {
	type plain ObjectMeta
	var v struct {
		plain
		ResourceVersionCamel   *string `json:"resourceVersion"`
		CreationTimestampCamel *Int64  `json:"creationTimestamp"`
		DeletionTimestampCamel *Int64  `json:"deletionTimestamp"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = ObjectMeta(v.plain)
	if v.ResourceVersionCamel != nil && !hasKey(b, "resource_version") {
		m.ResourceVersion = *v.ResourceVersionCamel
	}
	if v.CreationTimestampCamel != nil && !hasKey(b, "creation_timestamp") {
		m.CreationTimestamp = *v.CreationTimestampCamel
	}
	if v.DeletionTimestampCamel != nil && !hasKey(b, "deletion_timestamp") {
		m.DeletionTimestamp = *v.DeletionTimestampCamel
	}
	return nil
}

// Spec is the part of the GameServer spec the SDK exposes.
type Spec struct {
	Health Health `json:"health"`
}

// Health is spec.health: how the sidecar judges the game server's health pings.
type Health struct {
	Disabled            bool  `json:"disabled"`
	PeriodSeconds       int32 `json:"period_seconds"`
	FailureThreshold    int32 `json:"failure_threshold"`
	InitialDelaySeconds int32 `json:"initial_delay_seconds"`
}

// UnmarshalJSON accepts the proto names and their lowerCamel forms.
func (h *Health) UnmarshalJSON(b []byte) error {
	type plain Health
	var v struct {
		plain
		PeriodSecondsCamel       *int32 `json:"periodSeconds"`
		FailureThresholdCamel    *int32 `json:"failureThreshold"`
		InitialDelaySecondsCamel *int32 `json:"initialDelaySeconds"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*h = Health(v.plain)
	if v.PeriodSecondsCamel != nil && !hasKey(b, "period_seconds") {
		h.PeriodSeconds = *v.PeriodSecondsCamel
	}
	if v.FailureThresholdCamel != nil && !hasKey(b, "failure_threshold") {
		h.FailureThreshold = *v.FailureThresholdCamel
	}
	if v.InitialDelaySecondsCamel != nil && !hasKey(b, "initial_delay_seconds") {
		h.InitialDelaySeconds = *v.InitialDelaySecondsCamel
	}
	return nil
}

// Status is the GameServer status as the SDK exposes it. Counters and Lists are present when
// the CountsAndLists feature (Beta, on by default) is on; Players only with PlayerTracking.
type Status struct {
	State     string                   `json:"state"`
	Address   string                   `json:"address"`
	Addresses []Address                `json:"addresses"`
	Ports     []Port                   `json:"ports"`
	Players   *PlayerStatus            `json:"players"`
	Counters  map[string]CounterStatus `json:"counters"`
	Lists     map[string]ListStatus    `json:"lists"`
}

// Address is one of the node's or pod's addresses.
type Address struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// Port is a port clients connect to (the host port, or the container port with portPolicy None).
type Port struct {
	Name string `json:"name"`
	Port int32  `json:"port"`
}

// PlayerStatus is the Alpha player tracking status.
type PlayerStatus struct {
	Count    Int64    `json:"count"`
	Capacity Int64    `json:"capacity"`
	IDs      []string `json:"ids"`
}

// CounterStatus is a counter in the GameServer status.
type CounterStatus struct {
	Count    Int64 `json:"count"`
	Capacity Int64 `json:"capacity"`
}

// ListStatus is a list in the GameServer status.
type ListStatus struct {
	Capacity Int64    `json:"capacity"`
	Values   []string `json:"values"`
}

// Counter is a counter as the Beta counter endpoints return it: the projected value,
// including changes the sidecar has accepted but not yet written to the GameServer.
type Counter struct {
	Name     string `json:"name"`
	Count    Int64  `json:"count"`
	Capacity Int64  `json:"capacity"`
}

// List is a list as the Beta list endpoints return it: the projected value, including
// changes the sidecar has accepted but not yet written to the GameServer.
type List struct {
	Name     string   `json:"name"`
	Capacity Int64    `json:"capacity"`
	Values   []string `json:"values"`
}

// Contains reports whether v is one of the list's values.
func (l ListStatus) Contains(v string) bool { return contains(l.Values, v) }

// Contains reports whether v is one of the list's values.
func (l List) Contains(v string) bool { return contains(l.Values, v) }

func contains(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// Int64 is a protobuf int64: JSON encodes it as a string ("42"); decoding accepts a string,
// a number or null (0).
type Int64 int64

// MarshalJSON writes the value as a JSON string, as protobuf-JSON does.
func (i Int64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(i), 10) + `"`), nil
}

// UnmarshalJSON reads "42", 42 or null.
func (i *Int64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*i = 0
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("int64: %w", err)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// protobuf-JSON also accepts integral floats and exponents, e.g. 1e3.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("int64: %q is not an integer", s)
		}
		n = int64(f)
	}
	*i = Int64(n)
	return nil
}

// hasKey reports whether the JSON object b has the top-level key k.
func hasKey(b []byte, k string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m[k]
	return ok
}
