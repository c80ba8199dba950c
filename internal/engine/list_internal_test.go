package engine

import (
	"math/rand/v2"
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

// TestTaskListMatchesASliceModel runs random pushes, removes, replaces and
// pops on a list and on a slice side by side: order, length, membership,
// and the walk backwards from the tail to the head (watchUnwatchedLocked
// walks the queue so).
func TestTaskListMatchesASliceModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var l taskList
		var model []*task
		pool := make([]*task, 8)
		for i := range pool {
			pool[i] = &task{}
		}
		inList := func(x *task) bool { return slices.Contains(model, x) }
		for step := range 40 {
			x := pool[rng.IntN(len(pool))]
			switch op := rng.IntN(5); {
			case op == 0 && !inList(x):
				l.pushBack(x)
				model = append(model, x)
			case op == 1 && !inList(x):
				l.pushFront(x)
				model = slices.Insert(model, 0, x)
			case op == 2:
				if got, want := l.remove(x), inList(x); got != want {
					t.Fatalf("round %d step %d: remove = %v, want %v", round, step, got, want)
				}
				if i := slices.Index(model, x); i >= 0 {
					model = slices.Delete(model, i, i+1)
				}
			case op == 3 && len(model) > 0:
				if got := l.popFront(); got != model[0] {
					t.Fatalf("round %d step %d: popFront returned another task", round, step)
				}
				model = model[1:]
			case op == 4 && inList(x):
				y := &task{}
				if !l.replace(x, y) {
					t.Fatalf("round %d step %d: replace did not find the task", round, step)
				}
				model[slices.Index(model, x)] = y
				pool = append(pool, y)
			}
			if got := l.all(); !slices.Equal(got, model) && !(len(got) == 0 && len(model) == 0) {
				t.Fatalf("round %d step %d: list holds %d tasks, the model %d, or in another order", round, step, len(got), len(model))
			}
			if l.len() != len(model) {
				t.Fatalf("round %d step %d: len %d, want %d", round, step, l.len(), len(model))
			}
			for _, p := range pool {
				if l.holds(p) != inList(p) {
					t.Fatalf("round %d step %d: holds = %v for a task the model says %v", round, step, l.holds(p), inList(p))
				}
			}
			var back []*task
			for p := l.tail; p != nil; p = p.prev {
				back = append(back, p)
				if p == l.head {
					break
				}
			}
			slices.Reverse(back)
			if !slices.Equal(back, model) && !(len(back) == 0 && len(model) == 0) {
				t.Fatalf("round %d step %d: the walk from the tail found %d tasks, the model %d", round, step, len(back), len(model))
			}
		}
	}
}
