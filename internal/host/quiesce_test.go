package host

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestConcurrentJobsAnswerOnceAndLeaveNothing: several executors (ReplyTo)
// send jobs from goroutines of their own, some with a slot bound (held
// jobs), some with a timeout, some chunks of several items, and cancel
// some of them; now and then every job on the host is cancelled at once
// (CancelAll), and in some rounds the host drains halfway. Every job must
// be answered exactly once, and once all are, the host must hold nothing:
// no job registered, no executor's bound or held job kept.
func TestConcurrentJobsAnswerOnceAndLeaveNothing(t *testing.T) {
	const rounds, executors, jobsEach = 40, 3, 60
	reg := registry{
		// spin yields as many times as its argument's length, then looks at
		// its ctx once: works of a few lengths, some that see a cancel.
		"spin": func(ctx context.Context, arg []byte) ([]byte, error) {
			for range len(arg) {
				runtime.Gosched()
			}
			if len(arg)%3 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			return arg, nil
		},
	}
	for round := range rounds {
		var mu sync.Mutex
		answers := map[string]int{}
		emitted := make(chan struct{}, executors*jobsEach)
		h := New(Config{Registry: reg, EncodeError: testEncodeError, MaxWorks: 2 + round%3, Emit: func(replyTo string, r wire.Result) {
			mu.Lock()
			answers[fmt.Sprint(replyTo, "/", r.ID)]++
			mu.Unlock()
			emitted <- struct{}{}
		}})
		var wg sync.WaitGroup
		for e := range executors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(e)))
				replyTo := fmt.Sprint("ex", e)
				slots := 0
				if e > 0 {
					slots = e // executors 1 and 2 prefetch: jobs beyond their slots are held
				}
				for id := range uint64(jobsEach) {
					job := wire.Job{ID: id + 1, Name: "spin", Args: make([][]byte, 1+rng.IntN(3))}
					for i := range job.Args {
						job.Args[i] = make([]byte, rng.IntN(6))
					}
					if rng.IntN(8) == 0 {
						job.Timeout = time.Duration(1+rng.IntN(100)) * time.Microsecond
					}
					h.Run(&wire.Run{ReplyTo: replyTo, Slots: slots, Jobs: []wire.Job{job}})
					switch rng.IntN(12) {
					case 0:
						h.Cancel(&wire.Cancel{ReplyTo: replyTo, IDs: []uint64{1 + uint64(rng.IntN(int(id)+1))}})
					case 1:
						if e == 0 {
							h.CancelAll()
						}
					}
					if e == 0 && round%4 == 3 && id == jobsEach/2 {
						h.Drain() // the jobs after it are refused, the held ones answered
					}
				}
			}()
		}
		wg.Wait()
		for range executors * jobsEach {
			next(t, emitted, "a job was never answered")
		}
		<-h.idleChan()
		mu.Lock()
		for key, n := range answers {
			if n != 1 {
				t.Errorf("round %d: job %s answered %d times", round, key, n)
			}
		}
		if len(answers) != executors*jobsEach {
			t.Errorf("round %d: %d jobs answered, want %d", round, len(answers), executors*jobsEach)
		}
		mu.Unlock()
		h.mu.Lock()
		jobs, running, slots, held := len(h.jobs), h.running, len(h.slots), h.heldLocked()
		h.mu.Unlock()
		if jobs != 0 || running != 0 || slots != 0 || held != 0 {
			t.Fatalf("round %d: once every job was answered the host keeps %d jobs, counts %d running, %d executors' bounds, %d held", round, jobs, running, slots, held)
		}
		h.Close()
		if t.Failed() {
			return
		}
	}
}
