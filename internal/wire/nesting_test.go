package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// node is a self-referencing type, as a user's linked list or tree.
type node struct {
	Name string
	Next *node
	// Parent is skipped by the encoder, so a back-pointer is no cycle.
	Parent *node `cbor:"-"`
	Kids   []*node
}

// selfPtr is a pointer type that can point to itself without a container.
type selfPtr *selfPtr

// embedded structs are flattened into their parent's map: no level.
type inner struct{ X []int }
type outer struct {
	inner
	Y int
}

// nested returns v wrapped in n arrays.
func nested(n int, v any) any {
	for range n {
		v = []any{v}
	}
	return v
}

// chain returns a list of n nodes (n nested maps).
func chain(n int) *node {
	var l *node
	for range n {
		l = &node{Name: "n", Next: l}
	}
	return l
}

// TestCyclicValueIsAnErrorNotACrash: a cyclic argument or result crashed
// the process with a fatal stack overflow in the CBOR encoder. It must be
// ErrNesting naming the type, with the decoder's depth bound.
func TestCyclicValueIsAnErrorNotACrash(t *testing.T) {
	cyclic := &node{Name: "a"}
	cyclic.Next = cyclic
	self := map[string]any{}
	self["me"] = self
	loop := []any{nil}
	loop[0] = loop
	var viaAny any
	viaAny = &viaAny
	var sp selfPtr
	sp = &sp
	twoWay := &node{Name: "b"}
	twoWay.Kids = []*node{{Name: "c", Next: twoWay}}

	for _, tc := range []struct {
		name     string
		v        any
		typeName string
	}{
		{"pointer cycle", cyclic, "wire.node"},
		{"map containing itself", self, "map[string]interface {}"},
		{"slice containing itself", loop, "[]interface {}"},
		{"any pointing to itself", &viaAny, "*interface {}"},
		{"pointer type pointing to itself", sp, "wire.selfPtr"},
		{"cycle through a slice", twoWay, "wire.node"},
		{"too deep, not cyclic", nested(cborMaxNestedLevels+1, 1), "[]interface {}"},
		{"too deep list", chain(cborMaxNestedLevels + 1), "wire.node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MarshalValue(tc.v)
			if !errors.Is(err, ErrNesting) {
				t.Fatalf("MarshalValue: %v, want ErrNesting", err)
			}
			if !strings.Contains(err.Error(), tc.typeName) || !strings.Contains(err.Error(), "64") {
				t.Fatalf("error %q does not name %s and the bound", err, tc.typeName)
			}
		})
	}
}

// TestNestingBoundMatchesTheDecoder: what encodes, decodes, right up to
// the bound, and what the encoder does not count is not refused.
func TestNestingBoundMatchesTheDecoder(t *testing.T) {
	back := &node{Name: "root"}
	back.Kids = []*node{{Name: "kid", Parent: back}}
	shared := &node{Name: "shared"}
	dag := []*node{shared, shared, {Next: shared}}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"arrays at the bound", nested(cborMaxNestedLevels, 1)},
		{"list at the bound", chain(cborMaxNestedLevels)},
		{"time at the bound", nested(cborMaxNestedLevels, time.Unix(1, 0).UTC())},
		{"bytes at the bound", nested(cborMaxNestedLevels, []byte{1})},
		{"embedded struct at the bound", nested(cborMaxNestedLevels-2, outer{inner{[]int{1}}, 2})},
		{"skipped back-pointer", back},
		{"shared, not cyclic", dag},
		{"nil pointer", (*node)(nil)},
		{"nil", nil},
		{"map of any", map[string]any{"a": 1, "b": []any{"x", 2.5, map[string]any{"c": nil}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalValue(tc.v)
			if err != nil {
				t.Fatalf("MarshalValue: %v", err)
			}
			var out any
			if err := UnmarshalValue(b, &out); err != nil {
				t.Fatalf("the decoder refuses what the encoder produced: %v", err)
			}
		})
	}
}
