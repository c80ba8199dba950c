package testutil

import (
	"bytes"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
)

// labelPair matches one "key":"value" of a goroutine profile's labels line.
var labelPair = regexp.MustCompile(`"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"`)

// GoroutineLabels returns the pprof labels of the calling goroutine, as a
// CPU profile would record them, read from the goroutine profile: the
// runtime offers no other way to read them back. The labels of the
// goroutine that runs a work are what a profile of the work shows; tests
// use this to check which a work runs with. Not for goroutines calling it
// at the same time with the same stack (the profile groups them).
func GoroutineLabels() map[string]string {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	for block := range strings.SplitSeq(b.String(), "\n\n") {
		if !strings.Contains(block, "testutil.GoroutineLabels") {
			continue
		}
		labels := map[string]string{}
		for line := range strings.SplitSeq(block, "\n") {
			rest, ok := strings.CutPrefix(line, "# labels: ")
			if !ok {
				continue
			}
			for _, m := range labelPair.FindAllStringSubmatch(rest, -1) {
				k, err1 := strconv.Unquote(`"` + m[1] + `"`)
				v, err2 := strconv.Unquote(`"` + m[2] + `"`)
				if err1 != nil || err2 != nil {
					panic("testutil: unreadable labels line: " + line)
				}
				labels[k] = v
			}
		}
		return labels
	}
	panic("testutil: the calling goroutine is not in the goroutine profile")
}
