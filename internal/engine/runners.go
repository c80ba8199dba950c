package engine

import "github.com/aplex-go/aplex/internal/gopool"

// runnerIdle is how long a thread executor's goroutines may sit parked
// before the spare ones end (internal/gopool). A variable so that tests
// can shorten it; an executor reads it once, when it is made.
var runnerIdle = gopool.DefaultIdle
