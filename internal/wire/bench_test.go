package wire

import (
	"fmt"
	"io"
	"testing"
)

// benchRun returns a Run of n jobs with one 16-byte argument each, the
// shape of a typical fan-out batch.
func benchRun(n int) *Run {
	m := &Run{ReplyTo: "_INBOX.bench.1234"}
	for i := range n {
		m.Jobs = append(m.Jobs, Job{ID: uint64(1000 + i), Name: "resize", Args: [][]byte{[]byte("0123456789abcdef")}})
	}
	return m
}

// benchResults returns a Results of n jobs with one 16-byte value each.
func benchResults(n int) *Results {
	m := &Results{WorkerID: "worker-7f3a"}
	for i := range n {
		m.Results = append(m.Results, Result{ID: uint64(1000 + i), Items: []Outcome{{Value: []byte("0123456789abcdef")}}})
	}
	return m
}

var benchSizes = []int{1, 100}

func benchMarshal(b *testing.B, m Msg) {
	b.ReportAllocs()
	enc, _ := Marshal(m)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}

func benchUnmarshal(b *testing.B, m Msg) {
	b.ReportAllocs()
	enc, err := Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalRun(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) { benchMarshal(b, benchRun(n)) })
	}
}

func BenchmarkUnmarshalRun(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) { benchUnmarshal(b, benchRun(n)) })
	}
}

func BenchmarkMarshalResults(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("results=%d", n), func(b *testing.B) { benchMarshal(b, benchResults(n)) })
	}
}

func BenchmarkUnmarshalResults(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("results=%d", n), func(b *testing.B) { benchUnmarshal(b, benchResults(n)) })
	}
}

// BenchmarkAppendMsgRun measures encoding into a reused buffer, as a NATS
// publisher that keeps its own buffer would.
func BenchmarkAppendMsgRun(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("jobs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			m := benchRun(n)
			var buf []byte
			for b.Loop() {
				buf, _ = AppendMsg(buf[:0], m)
			}
		})
	}
}

// BenchmarkWriterRun measures framing into a buffered stream.
func BenchmarkWriterRun(b *testing.B) {
	b.ReportAllocs()
	w := NewWriter(io.Discard, 0)
	m := benchRun(1)
	for b.Loop() {
		if err := w.Write(m); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}
