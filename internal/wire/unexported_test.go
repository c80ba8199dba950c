package wire

//lint:file-ignore U1000 the unexported fields are what these tests encode: they are never read on purpose

import (
	"errors"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type withHidden struct {
	Name  string
	limit int
}

type holdsHidden struct{ In withHidden }

// embeddedHidden embeds an unexported struct type whose own field is
// unexported: the encoder flattens the embedded struct and drops it.
type hiddenInner struct{ secret string }
type embeddedHidden struct {
	hiddenInner
	Y int
}

// selfMarshaled has only unexported fields but encodes itself.
type selfMarshaled struct{ n int }

func (s selfMarshaled) MarshalCBOR() ([]byte, error) { return encMode.Marshal(s.n) }

// textOnly marshals itself to text, which the encode mode ignores.
type textOnly struct{ s string }

func (t textOnly) MarshalText() ([]byte, error) { return []byte(t.s), nil }

type skipped struct {
	Name  string
	cache map[string]int `cbor:"-"`
	memo  []int          `json:"-"`
	_     int
	noCmp [0]func()
}

type namedEmbed struct {
	hiddenInner `cbor:"inner"`
}

type hiddenNode struct {
	Next *hiddenNode
	id   int
}

// TestUnexportedFieldIsAnError: a value with an unexported field arrived in
// the other process with the field zeroed. MarshalValue must refuse it with
// ErrUnexportedField naming the type and the field, and accept every type
// the encoder writes whole.
func TestUnexportedFieldIsAnError(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want []string // in the error; nil: no error
	}{
		{"struct", withHidden{Name: "a", limit: 3}, []string{"wire.withHidden", "field limit", "unexported"}},
		{"pointer", &withHidden{}, []string{"wire.withHidden", "limit"}},
		{"nested", holdsHidden{}, []string{"field limit of type wire.withHidden", "in a value of type wire.holdsHidden"}},
		{"slice", []withHidden{}, []string{"withHidden", "limit"}},
		{"map value", map[string]withHidden{}, []string{"withHidden", "limit"}},
		{"map key", map[withHidden]int{}, []string{"withHidden", "limit"}},
		{"behind any", map[string]any{"a": []any{1, withHidden{}}}, []string{"withHidden", "limit"}},
		{"embedded", embeddedHidden{}, []string{"wire.hiddenInner", "secret"}},
		{"named embedded", namedEmbed{}, []string{"wire.hiddenInner", "secret"}},
		{"recursive", &hiddenNode{Next: &hiddenNode{}}, []string{"wire.hiddenNode", "field id"}},
		{"text marshaler", textOnly{s: "x"}, []string{"wire.textOnly", "field s"}},

		{"exported only", payload{Name: "n"}, nil},
		{"embedded promoted", outer{inner: inner{X: []int{1}}, Y: 2}, nil},
		{"skipped", skipped{Name: "n"}, nil},
		{"cbor marshaler", selfMarshaled{n: 1}, nil},
		{"time", time.Now(), nil},
		{"time in struct", struct{ At time.Time }{time.Now()}, nil},
		{"big.Int", big.NewInt(7), nil},
		{"big.Int value", struct{ N big.Int }{}, nil},
		{"binary marshaler", netip.MustParseAddr("10.0.0.1"), nil},
		{"any without structs", map[string]any{"a": []any{1, "x"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := MarshalValue(c.v)
			if c.want == nil {
				if err != nil {
					t.Fatalf("MarshalValue(%T): %v", c.v, err)
				}
				return
			}
			if !errors.Is(err, ErrUnexportedField) {
				t.Fatalf("MarshalValue(%T) = %v, want ErrUnexportedField", c.v, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestTextMarshalerIsNotUsedByTheEncoder pins the library behaviour the
// unexported-field check relies on: with this encode mode a TextMarshaler
// is encoded field by field (here: an empty map), not as its text.
func TestTextMarshalerIsNotUsedByTheEncoder(t *testing.T) {
	b, err := encMode.Marshal(textOnly{s: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1 || b[0] != 0xa0 {
		t.Fatalf("textOnly encodes as %x, want an empty map (a0)", b)
	}
}
