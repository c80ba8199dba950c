package wire

import "testing"

// BenchmarkMarshalValueGuard measures what the nesting guard adds to
// MarshalValue: nothing measurable for fixed-depth types, a walk for any.
func BenchmarkMarshalValueGuard(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    any
	}{
		{"int", 42},
		{"struct", payload{Name: "n", Tags: []string{"a", "b"}, Count: 3}},
		{"list16", chain(16)},
		{"mapany", map[string]any{"a": 1, "b": "x", "c": []any{1, 2, 3}, "d": map[string]any{"e": 1.5}}},
	} {
		b.Run(bc.name+"/guard", func(b *testing.B) {
			for b.Loop() {
				if err := checkNesting(bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/marshal", func(b *testing.B) {
			for b.Loop() {
				if _, err := MarshalValue(bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
