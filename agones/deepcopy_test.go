package agones_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/usher-gg/usher/agones"
)

// TestDeepCopy fills every field of each type (pod template included) with values, copies
// the object, then overwrites every field of the copy in place: the original must not
// change, which it would if the copy shared a map, slice or pointer with it.
func TestDeepCopy(t *testing.T) {
	tests := []struct {
		name string
		obj  runtime.Object
	}{
		{"GameServer", &agones.GameServer{}},
		{"GameServerList", &agones.GameServerList{}},
		{"GameServerAllocation", &agones.GameServerAllocation{}},
		{"GameServerAllocationList", &agones.GameServerAllocationList{}},
		{"Fleet", &agones.Fleet{}},
		{"FleetList", &agones.FleetList{}},
		{"FleetAutoscaler", &agones.FleetAutoscaler{}},
		{"FleetAutoscalerList", &agones.FleetAutoscalerList{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.obj
			fill(reflect.ValueOf(orig).Elem(), "a", 0)
			before := mustJSON(t, orig)

			cp := orig.DeepCopyObject()
			if reflect.TypeOf(cp) != reflect.TypeOf(orig) {
				t.Fatalf("DeepCopyObject returned %T, want %T", cp, orig)
			}
			if diff := cmp.Diff(before, mustJSON(t, cp)); diff != "" {
				t.Fatalf("copy differs from the original (-orig +copy):\n%s", diff)
			}
			fill(reflect.ValueOf(cp).Elem(), "b", 0)
			if bytes.Equal(mustJSON(t, cp), before) {
				t.Fatal("refilling the copy changed nothing: the test would prove nothing")
			}
			if diff := cmp.Diff(string(before), string(mustJSON(t, orig))); diff != "" {
				t.Errorf("changing the copy changed the original (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDeepCopyNil(t *testing.T) {
	var gs *agones.GameServer
	if got := gs.DeepCopy(); got != nil {
		t.Errorf("nil.DeepCopy() = %v, want nil", got)
	}
	if got := gs.DeepCopyObject(); got != nil {
		t.Errorf("nil.DeepCopyObject() = %v, want nil", got)
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	quantityType = reflect.TypeOf(resource.Quantity{})
	intstrType   = reflect.TypeOf(intstr.IntOrString{})
	fieldsV1Type = reflect.TypeOf(metav1.FieldsV1{})
)

// fill sets every exported field reachable from v to a value derived from seed. Existing
// maps, slices and pointers are filled in place, so memory a copy shares with its original
// is overwritten in both; nil ones are allocated with one entry.
func fill(v reflect.Value, seed string, depth int) {
	if depth > 30 {
		return
	}
	switch v.Type() {
	case timeType:
		v.Set(reflect.ValueOf(time.Unix(int64(len(seed)*1000+int(seed[0])), 0).UTC()))
		return
	case quantityType:
		v.Set(reflect.ValueOf(resource.MustParse(fmt.Sprintf("%dMi", int(seed[0])))))
		return
	case intstrType:
		v.Set(reflect.ValueOf(intstr.FromString(seed + "%")))
		return
	case fieldsV1Type:
		v.Set(reflect.ValueOf(metav1.FieldsV1{Raw: []byte(`{"f:` + seed + `":{}}`)}))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(seed)
	case reflect.Bool:
		v.SetBool(seed[0]%2 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed[0]))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed[0]))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed[0]))
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), seed, depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed, depth+1)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := range v.Len() {
			fill(v.Index(i), fmt.Sprintf("%s%d", seed, i), depth+1)
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for i := range 1 {
				k := reflect.New(v.Type().Key()).Elem()
				fill(k, fmt.Sprintf("k%d", i), depth+1)
				v.SetMapIndex(k, reflect.New(v.Type().Elem()).Elem())
			}
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k)) // shares whatever the stored value references
			fill(e, seed+k.String(), depth+1)
			v.SetMapIndex(k, e)
		}
	}
}
