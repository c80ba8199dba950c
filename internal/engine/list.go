package engine

import "sync/atomic"

// taskList is an intrusive doubly linked list of tasks: the FIFO queue and
// each worker's running set. Insert and remove are O(1) and allocate nothing.
type taskList struct {
	head, tail *task
	n          atomic.Int64 // written under the list's lock, read anywhere
}

// len returns the number of tasks; it may be called without the lock.
func (l *taskList) len() int { return int(l.n.Load()) }

func (l *taskList) pushBack(t *task) {
	t.prev, t.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = t
	} else {
		l.head = t
	}
	l.tail = t
	l.n.Add(1)
}

func (l *taskList) pushFront(t *task) {
	t.prev, t.next = nil, l.head
	if l.head != nil {
		l.head.prev = t
	} else {
		l.tail = t
	}
	l.head = t
	l.n.Add(1)
}

// holds reports whether t is in the list, given that it is in this one or
// in none.
func (l *taskList) holds(t *task) bool { return t.prev != nil || t.next != nil || l.head == t }

// remove takes t out of the list and reports whether it was in it: a task
// already removed is left alone, and the list with it.
func (l *taskList) remove(t *task) bool {
	if !l.holds(t) {
		return false
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		l.tail = t.prev
	}
	t.prev, t.next = nil, nil
	l.n.Add(-1)
	return true
}

// replace puts t, in no list, in old's place in the list and reports
// whether old was in it (if not, the list is left alone). The length does
// not change, so its counter is not written.
func (l *taskList) replace(old, t *task) bool {
	if !l.holds(old) {
		return false
	}
	t.prev, t.next = old.prev, old.next
	if t.prev != nil {
		t.prev.next = t
	} else {
		l.head = t
	}
	if t.next != nil {
		t.next.prev = t
	} else {
		l.tail = t
	}
	old.prev, old.next = nil, nil
	return true
}

func (l *taskList) popFront() *task {
	t := l.head
	if t != nil {
		l.remove(t)
	}
	return t
}

// all returns the tasks in order (a copy, safe to use after unlocking).
func (l *taskList) all() []*task {
	out := make([]*task, 0, l.len())
	for t := l.head; t != nil; t = t.next {
		out = append(out, t)
	}
	return out
}
