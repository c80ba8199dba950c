package engine

import (
	"testing"
	"unsafe"
)

// TestSubmitAllocationStaysInItsSizeClass pins the size of a Submit's one
// allocation for an int work (task, future, work and argument): 128
// bytes, a size class of its own. A fan-out's CPU grows with the bytes
// allocated: going from 176 to 144 (the work ctx's deadline and cause out
// of line in lazyctx, the error boxed, the cancelled flag folded into the
// state, the ctx watch a byte) took 3.8 % off the bench module's fan-out
// CPU per work (bench/cmd/alternate, 100 rounds, 0.939-0.986), and the
// bench's futures-pool floor costs 8 % more with its future padded from
// 144 to 176 bytes; from 144 to 128 (the executor in taskExtra, the
// callbacks and the error one word: task.end) saved memory, not CPU
// measurably. A field added to task must move something out of line
// (taskExtra, the callbacks list) rather than grow it.
func TestSubmitAllocationStaysInItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(call[int, int]{}); n > 128 {
		t.Fatalf("call[int, int] is %d bytes; it must stay within 128 (see taskExtra)", n)
	}
}

// TestMapChunkOfOneStaysInItsSizeClass pins the size of a Map chunk for an
// int work on goroutine workers (one allocation per chunk, a chunk of one
// by default): 224 bytes (256 before the task shrank to fit a Submit in
// 144), where it was 320 with the outcome slices of a chunk of more than
// one in every chunk (chunkOutcomes holds those now).
func TestMapChunkOfOneStaysInItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(chunk[int, int]{}); n > 224 {
		t.Fatalf("chunk[int, int] is %d bytes; it must stay within 224 (see chunkOutcomes)", n)
	}
}
