package engine

import (
	"testing"
	"unsafe"
)

// TestSubmitAllocationStaysInItsSizeClass pins the size of a Submit's one
// allocation for an int work (task, future, work and argument): 176
// bytes, a size class of its own. A fan-out's CPU grows with the bytes
// allocated, if less than first measured: 32 bytes more per task seemed
// to cost the bench module's FanOut/aplex-thread 10 % more CPU (8
// interleaved pairs), 40 bytes more cost 1.3 % in 30 alternated runs. A
// field added to task must move something out of line (taskExtra, the
// callbacks list) rather than grow it.
func TestSubmitAllocationStaysInItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(call[int, int]{}); n > 176 {
		t.Fatalf("call[int, int] is %d bytes; it must stay within 176 (see taskExtra)", n)
	}
}

// TestMapChunkOfOneStaysInItsSizeClass pins the size of a Map chunk for an
// int work on goroutine workers (one allocation per chunk, a chunk of one
// by default): 256 bytes, where it was 320 with the outcome slices of a
// chunk of more than one in every chunk (chunkOutcomes holds those now).
func TestMapChunkOfOneStaysInItsSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(chunk[int, int]{}); n > 256 {
		t.Fatalf("chunk[int, int] is %d bytes; it must stay within 256 (see chunkOutcomes)", n)
	}
}
