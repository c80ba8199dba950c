package seal

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// FuzzOpen: no input makes Open panic or accept a message no key holder
// sealed; a message that opens is one the executor sealed, once.
func FuzzOpen(f *testing.F) {
	ex, wk := pair(f, [][]byte{key(1)}, [][]byte{key(1)})
	const subj = "aplex.p.w.w1"
	for _, p := range []string{"", "x", "a longer run message"} {
		m, _ := ex.Seal(nil, subj, wk.Epoch(), []byte(p))
		f.Add(m, true)
		f.Add(m[:len(m)/2], true)
	}
	m, _ := ex.Seal(nil, "aplex.p.discover", [16]byte{}, []byte("d"))
	f.Add(m, false)
	f.Add([]byte{Magic}, false)
	sealed := map[string]bool{} // what the executor sealed, by ciphertext
	f.Fuzz(func(t *testing.T, data []byte, direct bool) {
		in := bytes.Clone(data)
		plain, p, err := wk.Open(subj, data, direct)
		if err != nil {
			if plain != nil || p != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if p.ID != "ex1" || p.Epoch != ex.Epoch() {
			t.Fatalf("opened a message of %q %x: only ex1 seals under this key", p.ID, p.Epoch)
		}
		if sealed[string(in)] {
			t.Fatalf("opened the same message twice")
		}
		sealed[string(in)] = true
	})
}
