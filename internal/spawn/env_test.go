package spawn

import (
	"os/exec"
	"slices"
	"testing"
)

// TestChildEnvQuietsRaceExitUnlessGORACESet: children of a -race binary must
// not sleep a second at exit, unless the user chose their race settings.
func TestChildEnvQuietsRaceExitUnlessGORACESet(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"empty", []string{}, []string{quietRaceExit}},
		{"others", []string{"A=1"}, []string{"A=1", quietRaceExit}},
		{"user GORACE", []string{"GORACE=halt_on_error=1", "A=1"}, []string{"GORACE=halt_on_error=1", "A=1"}},
		{"user GORACE last", []string{"A=1", "GORACE="}, []string{"A=1", "GORACE="}},
		{"prefix only", []string{"GORACEX=1"}, []string{"GORACEX=1", quietRaceExit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clip(slices.Clone(tc.env))
			if got := ChildEnv(in); !slices.Equal(got, tc.want) {
				t.Fatalf("ChildEnv(%q) = %q, want %q", tc.env, got, tc.want)
			}
			if !slices.Equal(in, tc.env) {
				t.Fatalf("ChildEnv modified its input: %q", in)
			}
		})
	}
	t.Run("nil means this environment", func(t *testing.T) {
		t.Setenv("GORACE", "")
		if got := ChildEnv(nil); !slices.Contains(got, "GORACE=") || slices.Contains(got, quietRaceExit) {
			t.Fatalf("ChildEnv(nil) with GORACE set: %q", got)
		}
	})
}

// TestForkerStartSetsChildEnv: the tweak is applied where every transport
// starts its children.
func TestForkerStartSetsChildEnv(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `test "$GORACE" = atexit_sleep_ms=0`)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	f := NewForker()
	defer f.Stop()
	if err := f.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child did not see GORACE=atexit_sleep_ms=0: %v", err)
	}
}
