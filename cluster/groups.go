package cluster

// groupIn returns the element of *gs that is, for the current round, the
// group of one destination (same reports it), or starts a new one. A round
// rarely holds more than a few destinations, so a linear search beats a
// map, and elements past len from earlier rounds are reused (reset keeps
// their buffers), so a steady state allocates nothing.
func groupIn[T any](gs *[]T, same func(*T) bool, reset func(*T)) *T {
	for i := range *gs {
		if same(&(*gs)[i]) {
			return &(*gs)[i]
		}
	}
	if len(*gs) < cap(*gs) {
		*gs = (*gs)[:len(*gs)+1]
	} else {
		var fresh T
		*gs = append(*gs, fresh)
	}
	g := &(*gs)[len(*gs)-1]
	reset(g)
	return g
}
