package wire

import (
	"encoding"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrNesting is wrapped by MarshalValue's error for a value that nests
// deeper than the decoder accepts (cborMaxNestedLevels arrays and maps),
// which every cyclic value does. The CBOR encoder has no depth limit of its
// own: it would recurse until the goroutine's stack overflows, which is a
// fatal error that kills the process, not a panic.
var ErrNesting = errors.New("wire: value nests too deep")

// ErrUnexportedField is wrapped by MarshalValue's error for a value whose
// type has an unexported struct field the encoder would silently drop, so
// that the value would arrive with the field zeroed. The error names the
// type and the field. Fields tagged "-" (cbor or json), blank (_) and
// zero-size fields are not data and are fine, and so is any field of a type
// that encodes itself: one whose pointer implements cbor.Marshaler or
// encoding.BinaryMarshaler (time.Time, netip.Addr, url.URL), and big.Int,
// which the encoder handles itself. encoding.TextMarshaler and
// json.Marshaler do not count: the encode mode does not use them.
var ErrUnexportedField = errors.New("wire: unexported field would be lost")

// maxHops bounds the pointers and interfaces followed in a row without
// entering an array or a map: only a cycle of pointers (var x any; x = &x)
// needs more.
const maxHops = 256

// checkNesting reports an error wrapping ErrNesting if v would encode with
// more than cborMaxNestedLevels levels of arrays and maps, or not at all
// for a cycle of pointers, and one wrapping ErrUnexportedField if v's type,
// or the dynamic type of a value it holds in an interface, has a struct
// field the encoder would drop (see ErrUnexportedField). It counts as the encoder nests: structs are maps
// (embedded structs flattened into them), byte slices and values the
// encoder does not descend into (Marshalers, time.Time) are leaves, and
// fields tagged "-" are skipped.
//
// Most types cost one cached lookup: a type that cannot hold an interface
// or itself has a fixed maximum depth, and its unexported fields are known
// from the type alone. Only values of the other types (any, recursive
// structs) are walked, and a walk stops where the remaining depth is fixed
// and small enough and the type has no unexported field. Where the type
// does not say (behind an interface, inside a recursive type), only the
// values present are checked.
func checkNesting(v any) error {
	switch v.(type) {
	case nil, bool, int, int64, uint64, float64, string, []byte, []int, []string,
		*bool, *int, *int64, *uint64, *float64, *string, *[]byte, *[]int, *[]string:
		return nil // the common values (or pointers to them, valueRef): no lookup
	}
	rv := reflect.ValueOf(v)
	ti := infoOf(rv.Type())
	if ti.hidden == nil && fits(ti.depth, 0) {
		return nil
	}
	bad, hidden := walkNesting(rv, 0, 0)
	switch {
	case hidden != nil:
		in := ""
		if hidden.owner != rv.Type() {
			in = fmt.Sprintf(" (in a value of type %v)", rv.Type())
		}
		return fmt.Errorf("%w: field %s of type %v is unexported%s, so CBOR would drop it: export it, tag it `cbor:\"-\"`, or give %v a MarshalCBOR or MarshalBinary method",
			ErrUnexportedField, hidden.name, hidden.owner, in, hidden.owner)
	case bad != nil:
		return fmt.Errorf("%w: a value of type %v nests deeper than %d levels of arrays and maps (is it cyclic?)", ErrNesting, bad, cborMaxNestedLevels)
	}
	return nil
}

// walkNesting walks v, which sits under level arrays and maps and hops
// pointers or interfaces since the last of them. It returns the type at
// which the bound was exceeded, or the first unexported field found, or
// neither.
func walkNesting(v reflect.Value, level, hops int) (reflect.Type, *hiddenField) {
	t := v.Type()
	ti := infoOf(t)
	if ti.hidden != nil {
		return nil, ti.hidden
	}
	if fits(ti.depth, level) {
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		if hops++; hops > maxHops {
			return t, nil
		}
		return walkNesting(v.Elem(), level, hops)
	case reflect.Slice, reflect.Map:
		if v.IsNil() {
			return nil, nil // encoded as null
		}
	}
	if level++; level > cborMaxNestedLevels {
		return t, nil
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if bad, hidden := walkNesting(v.Index(i), level, 0); bad != nil || hidden != nil {
				return bad, hidden
			}
		}
	case reflect.Map:
		// Set* into reusable values: MapIter.Key and Value allocate.
		var k reflect.Value
		if !fits(infoOf(t.Key()).depth, level) {
			k = reflect.New(t.Key()).Elem()
		}
		e := reflect.New(t.Elem()).Elem()
		for it := v.MapRange(); it.Next(); {
			if k.IsValid() {
				k.SetIterKey(it)
				if bad, hidden := walkNesting(k, level, 0); bad != nil || hidden != nil {
					return bad, hidden
				}
			}
			e.SetIterValue(it)
			if bad, hidden := walkNesting(e, level, 0); bad != nil || hidden != nil {
				return bad, hidden
			}
		}
	case reflect.Struct:
		for _, f := range ti.fields {
			if fits(f.depth, level) {
				continue
			}
			fv := v.Field(f.index[0])
			if len(f.index) > 1 {
				var err error
				if fv, err = v.FieldByIndexErr(f.index); err != nil {
					continue // through a nil embedded pointer: not encoded
				}
			}
			if bad, hidden := walkNesting(fv, level, 0); bad != nil || hidden != nil {
				return bad, hidden
			}
		}
	}
	return nil, nil
}

// fits reports whether a value of depth d under level arrays and maps
// stays within the bound.
func fits(d, level int) bool { return d != unbounded && level+d <= cborMaxNestedLevels }

// unbounded is a depth for types whose values can nest without limit: one
// holding an interface, or itself.
const unbounded = -1

// typeInfo is what the guard knows of a type, computed once.
type typeInfo struct {
	// depth is the most levels of arrays and maps a value of the type can
	// encode to, or unbounded.
	depth int
	// fields are a struct's encoded fields (see collectFields).
	fields []fieldInfo
	// hidden is the first unexported field the encoder would drop from a
	// value of the type, found through its fields, elements, keys and
	// pointers (not through interfaces), or nil.
	hidden *hiddenField
}

// hiddenField names an unexported struct field.
type hiddenField struct {
	owner reflect.Type // the struct type that declares it
	name  string
}

type fieldInfo struct {
	index []int // for reflect.Value.FieldByIndex
	depth int   // of the field's type
}

// infos caches typeInfo per reflect.Type.
var infos sync.Map

// The types the encoder writes by their own method or by special code,
// without descending into their fields. TextMarshaler and json.Marshaler
// are not among them: the encode mode leaves both off (TextMarshalerNone,
// no JSONMarshalerTranscoder), so such types are encoded field by field.
var (
	typeMarshaler       = reflect.TypeFor[cbor.Marshaler]()
	typeBinaryMarshaler = reflect.TypeFor[encoding.BinaryMarshaler]()
	typeBigInt          = reflect.TypeFor[big.Int]()
)

// infoOf returns t's typeInfo.
func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := infos.Load(t); ok {
		return ti.(*typeInfo)
	}
	return computeInfo(t, map[reflect.Type]bool{})
}

// computeInfo computes and caches t's typeInfo; visiting holds the types
// being computed, so that reaching one again means t is recursive.
func computeInfo(t reflect.Type, visiting map[reflect.Type]bool) *typeInfo {
	if ti, ok := infos.Load(t); ok {
		return ti.(*typeInfo)
	}
	if visiting[t] {
		return &typeInfo{depth: unbounded} // not cached: t's own is computed below
	}
	visiting[t] = true
	defer delete(visiting, t)
	ti := &typeInfo{}
	// depth returns the depth of a part of t, and inherits its hidden field.
	depth := func(t reflect.Type) int {
		pi := computeInfo(t, visiting)
		if ti.hidden == nil {
			ti.hidden = pi.hidden
		}
		return pi.depth
	}

	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(typeMarshaler) || pt.Implements(typeBinaryMarshaler) || t == typeBigInt:
		// Encoded by its own method, not by descending (time.Time too).
	default:
		switch t.Kind() {
		case reflect.Interface:
			ti.depth = unbounded
		case reflect.Pointer:
			ti.depth = depth(t.Elem())
		case reflect.Slice:
			if t.Elem().Kind() != reflect.Uint8 { // []byte is a byte string
				ti.depth = above(depth(t.Elem()))
			}
		case reflect.Array:
			ti.depth = above(depth(t.Elem()))
		case reflect.Map:
			ti.depth = above(deeper(depth(t.Key()), depth(t.Elem())))
		case reflect.Struct:
			var paths [][]int
			ti.hidden = collectFields(t, nil, map[reflect.Type]bool{}, &paths)
			inner := 0
			for _, p := range paths {
				f := fieldInfo{index: p, depth: depth(t.FieldByIndex(p).Type)}
				ti.fields = append(ti.fields, f)
				inner = deeper(inner, f.depth)
			}
			ti.depth = above(inner)
		}
	}
	actual, _ := infos.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

// above is the depth of a container of elements of depth d.
func above(d int) int {
	if d == unbounded {
		return unbounded
	}
	return d + 1
}

// deeper returns the larger depth, unbounded being the largest.
func deeper(a, b int) int {
	if a == unbounded || b == unbounded {
		return unbounded
	}
	return max(a, b)
}

// collectFields appends the index paths of the fields the encoder writes
// for struct type t: exported fields not tagged "-", with the fields of
// untagged embedded structs (or pointers to structs) in place of them, as
// the encoder flattens those into the struct's own map, exported or not.
// It returns the first field the encoder drops although it holds data: an
// unexported one, not tagged "-", not blank, not of size zero.
func collectFields(t reflect.Type, prefix []int, seen map[reflect.Type]bool, fs *[][]int) (hidden *hiddenField) {
	if seen[t] {
		return nil // an embedding cycle through pointers: the encoder stops too
	}
	seen[t] = true
	defer delete(seen, t)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("cbor")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		path := append(prefix[:len(prefix):len(prefix)], i)
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && name != "" {
				// Encoded under its tag's name, exported or not.
				*fs = append(*fs, path)
				continue
			}
			if ft.Kind() == reflect.Struct {
				if h := collectFields(ft, path, seen, fs); hidden == nil {
					hidden = h
				}
				continue
			}
		}
		if !f.IsExported() {
			if hidden == nil && f.Name != "_" && f.Type.Size() != 0 {
				hidden = &hiddenField{owner: t, name: f.Name}
			}
			continue
		}
		*fs = append(*fs, path)
	}
	return hidden
}
