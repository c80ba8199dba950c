package wire

import "testing"

// TestCodeFates pins what every code means for a future: only a refusal
// before the job ran may requeue it, and a lost result is never run again
// (the defect was a lost result sent as CodeShutdown, so the job ran twice).
func TestCodeFates(t *testing.T) {
	for _, tc := range []struct {
		code ErrCode
		want Fate
	}{
		{CodeNone, FateFail},
		{CodeUnknownWork, FateFail},
		{CodeBadArgument, FateFail},
		{CodeBadResult, FateFail},
		{CodeTooLarge, FateFail},
		{CodeCanceled, FateFail},
		{CodeDeadline, FateFail},
		{CodeShutdown, FateRequeue},
		{CodeResultLost, FateLost},
		{ErrCode(200), FateFail}, // unknown: never risk a second run
	} {
		if got := tc.code.Fate(); got != tc.want {
			t.Errorf("%v.Fate() = %v, want %v", tc.code, got, tc.want)
		}
	}
}

// TestNeverRan: a job may run again only if every item was refused.
func TestNeverRan(t *testing.T) {
	refused := Outcome{Err: &Error{Code: CodeShutdown}}
	lost := Outcome{Err: &Error{Code: CodeResultLost}}
	ran := Outcome{Value: []byte{0xf6}}
	for _, tc := range []struct {
		name  string
		items []Outcome
		want  bool
	}{
		{"refused", []Outcome{refused}, true},
		{"refused chunk", []Outcome{refused, refused}, true},
		{"lost", []Outcome{lost}, false},
		{"lost chunk", []Outcome{lost, lost}, false},
		{"partly ran", []Outcome{refused, ran}, false},
		{"refused and lost", []Outcome{refused, lost}, false},
		{"work error", []Outcome{{Err: &Error{Message: "x"}}}, false},
		{"empty", nil, false},
	} {
		if got := NeverRan(tc.items); got != tc.want {
			t.Errorf("%s: NeverRan = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFailedFailsEveryItem: the one "fail every item of a job" (there were
// five copies) gives each item the error, and an empty job no items.
func TestFailedFailsEveryItem(t *testing.T) {
	e := &Error{Code: CodeTooLarge, Message: "too large"}
	for _, n := range []int{0, 1, 3} {
		r := Failed(7, n, e)
		if r.ID != 7 || len(r.Items) != n {
			t.Fatalf("Failed(7, %d) = id %d, %d items", n, r.ID, len(r.Items))
		}
		for i, o := range r.Items {
			if o.Err != e || o.Value != nil {
				t.Errorf("Failed(7, %d).Items[%d] = %+v, want the error alone", n, i, o)
			}
		}
	}
}
