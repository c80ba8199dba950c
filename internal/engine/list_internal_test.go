package engine

import (
	"slices"
	"testing"
)

// TestTaskListRemoveTwice: removing a task that left the list already
// changes nothing. The teardown frees the slots of a process worker whose
// reader it left running a completion callback; that reader's Done then
// released the same task again, which emptied the worker's running list
// and made its count negative (a panic in the next Lost).
func TestTaskListRemoveTwice(t *testing.T) {
	tasks := make([]*task, 3)
	for _, only := range []bool{true, false} {
		var l taskList
		for i := range tasks {
			tasks[i] = &task{}
			if !only || i == 1 {
				l.pushBack(tasks[i])
			}
		}
		if !l.remove(tasks[1]) {
			t.Fatal("the first remove found nothing")
		}
		if l.remove(tasks[1]) {
			t.Error("the second remove found the task again")
		}
		want := []*task{tasks[0], tasks[2]}
		if only {
			want = []*task{}
		}
		if got := l.all(); !slices.Equal(got, want) || l.len() != len(want) {
			t.Errorf("only=%v: after removing twice: %d tasks, len %d; want %d", only, len(got), l.len(), len(want))
		}
		if l.remove(&task{}) {
			t.Error("a task never in the list was found")
		}
	}
}
