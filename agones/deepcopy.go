package agones

import (
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
)

// Deep copies, written by hand (no code generator runs here). Informer caches hand out
// shared pointers, so anything that changes a cached object must copy it first;
// deepcopy_test.go checks that a copy shares no memory with its original.

// DeepCopyInto copies in into out.
func (in *GameServer) DeepCopyInto(out *GameServer) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of in.
func (in *GameServer) DeepCopy() *GameServer {
	if in == nil {
		return nil
	}
	out := new(GameServer)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *GameServer) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies in into out.
func (in *GameServerList) DeepCopyInto(out *GameServerList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]GameServer, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of in.
func (in *GameServerList) DeepCopy() *GameServerList {
	if in == nil {
		return nil
	}
	out := new(GameServerList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *GameServerList) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies in into out.
func (in *GameServerSpec) DeepCopyInto(out *GameServerSpec) {
	*out = *in
	out.Ports = slices.Clone(in.Ports) // GameServerPort holds no references
	out.Counters = maps.Clone(in.Counters)
	out.Lists = copyLists(in.Lists)
	in.Template.DeepCopyInto(&out.Template)
}

// DeepCopyInto copies in into out.
func (in *GameServerStatus) DeepCopyInto(out *GameServerStatus) {
	*out = *in
	out.Ports = slices.Clone(in.Ports)
	out.Addresses = slices.Clone(in.Addresses)
	out.Counters = maps.Clone(in.Counters)
	out.Lists = copyLists(in.Lists)
}

func copyLists(in map[string]ListStatus) map[string]ListStatus {
	if in == nil {
		return nil
	}
	out := make(map[string]ListStatus, len(in))
	for k, v := range in {
		v.Values = slices.Clone(v.Values)
		out[k] = v
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *GameServerAllocation) DeepCopyInto(out *GameServerAllocation) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of in.
func (in *GameServerAllocation) DeepCopy() *GameServerAllocation {
	if in == nil {
		return nil
	}
	out := new(GameServerAllocation)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *GameServerAllocation) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies in into out.
func (in *GameServerAllocationList) DeepCopyInto(out *GameServerAllocationList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]GameServerAllocation, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (in *GameServerAllocationList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(GameServerAllocationList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *GameServerAllocationSpec) DeepCopyInto(out *GameServerAllocationSpec) {
	*out = *in
	if in.Selectors != nil {
		out.Selectors = make([]GameServerSelector, len(in.Selectors))
		for i := range in.Selectors {
			in.Selectors[i].DeepCopyInto(&out.Selectors[i])
		}
	}
	out.Priorities = slices.Clone(in.Priorities)
	in.MetaPatch.DeepCopyInto(&out.MetaPatch)
	if in.Counters != nil {
		out.Counters = make(map[string]CounterAction, len(in.Counters))
		for k, v := range in.Counters {
			v.Amount = clonePtr(v.Amount)
			v.Capacity = clonePtr(v.Capacity)
			out.Counters[k] = v
		}
	}
	if in.Lists != nil {
		out.Lists = make(map[string]ListAction, len(in.Lists))
		for k, v := range in.Lists {
			v.AddValues = slices.Clone(v.AddValues)
			v.DeleteValues = slices.Clone(v.DeleteValues)
			v.Capacity = clonePtr(v.Capacity)
			out.Lists[k] = v
		}
	}
}

// DeepCopyInto copies in into out.
func (in *GameServerSelector) DeepCopyInto(out *GameServerSelector) {
	*out = *in
	in.LabelSelector.DeepCopyInto(&out.LabelSelector)
	out.GameServerState = clonePtr(in.GameServerState)
	out.Counters = maps.Clone(in.Counters)
	out.Lists = maps.Clone(in.Lists)
}

// DeepCopyInto copies in into out.
func (in *MetaPatch) DeepCopyInto(out *MetaPatch) {
	out.Labels = maps.Clone(in.Labels)
	out.Annotations = maps.Clone(in.Annotations)
}

// DeepCopyInto copies in into out.
func (in *GameServerAllocationStatus) DeepCopyInto(out *GameServerAllocationStatus) {
	*out = *in
	out.Ports = slices.Clone(in.Ports)
	out.Addresses = slices.Clone(in.Addresses)
	if in.Metadata != nil {
		out.Metadata = &GameServerMetadata{
			Labels:      maps.Clone(in.Metadata.Labels),
			Annotations: maps.Clone(in.Metadata.Annotations),
		}
	}
	out.Counters = maps.Clone(in.Counters)
	out.Lists = copyLists(in.Lists)
}

// DeepCopyInto copies in into out.
func (in *Fleet) DeepCopyInto(out *Fleet) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of in.
func (in *Fleet) DeepCopy() *Fleet {
	if in == nil {
		return nil
	}
	out := new(Fleet)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *Fleet) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies in into out.
func (in *FleetList) DeepCopyInto(out *FleetList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]Fleet, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (in *FleetList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(FleetList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *FleetSpec) DeepCopyInto(out *FleetSpec) {
	*out = *in
	in.Strategy.DeepCopyInto(&out.Strategy)
	in.Template.ObjectMeta.DeepCopyInto(&out.Template.ObjectMeta)
	in.Template.Spec.DeepCopyInto(&out.Template.Spec)
	out.Priorities = slices.Clone(in.Priorities)
}

// DeepCopyInto copies in into out.
func (in *FleetStatus) DeepCopyInto(out *FleetStatus) {
	*out = *in
	out.Counters = maps.Clone(in.Counters)
	out.Lists = maps.Clone(in.Lists)
}

// DeepCopyInto copies in into out.
func (in *FleetAutoscaler) DeepCopyInto(out *FleetAutoscaler) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Policy.Buffer != nil {
		b := *in.Spec.Policy.Buffer // IntOrString holds no references
		out.Spec.Policy.Buffer = &b
	}
	out.Spec.Sync = clonePtr(in.Spec.Sync)
	out.Status.LastScaleTime = in.Status.LastScaleTime.DeepCopy()
}

// DeepCopy returns a deep copy of in.
func (in *FleetAutoscaler) DeepCopy() *FleetAutoscaler {
	if in == nil {
		return nil
	}
	out := new(FleetAutoscaler)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *FleetAutoscaler) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies in into out.
func (in *FleetAutoscalerList) DeepCopyInto(out *FleetAutoscalerList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]FleetAutoscaler, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopyObject implements runtime.Object.
func (in *FleetAutoscalerList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(FleetAutoscalerList)
	in.DeepCopyInto(out)
	return out
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// compile-time checks that every type the scheme holds is a runtime.Object.
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
