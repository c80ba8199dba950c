package bench

import (
	"errors"
	"io"
	"os"
	"sync"
)

// MsgSize is the size of one request and one reply of the raw pipe floor.
const MsgSize = 32

// PipePeer is the parent's end of the raw pipe floor: a child process (this
// binary re-executed) that echoes every byte it reads on fd 3 back on fd 4.
// It is the least a round trip to another process can cost: no framing, no
// encoding, no dispatch.
type PipePeer struct {
	w, r *os.File
	// in and out are how requests are written and replies read: the
	// files themselves, or the raw system calls on them (StartRawPipePeer).
	in   io.Writer
	out  io.Reader
	done chan error
}

// StartPipePeer starts the echo child and waits until it answers. Both
// sides read and write through os.File.
func StartPipePeer() (*PipePeer, error) { return startPipePeer(false) }

// StartRawPipePeer is StartPipePeer with both sides reading and writing
// their non-blocking pipe ends with raw system calls, waiting on the
// netpoller when a pipe is empty or full (rawpipe_linux.go): the system
// calls aplex's process workers make, without anything else.
func StartRawPipePeer() (*PipePeer, error) { return startPipePeer(true) }

func startPipePeer(raw bool) (*PipePeer, error) {
	role := rolePipeEcho
	if raw {
		role = rolePipeEchoRaw
	}
	cmd, err := selfCommand(role)
	if err != nil {
		return nil, err
	}
	// Requests: the parent writes toChild, the child reads fd 3.
	childIn, toChild, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// Replies: the child writes fd 4, the parent reads fromChild.
	fromChild, childOut, err := os.Pipe()
	if err != nil {
		childIn.Close()
		toChild.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{childIn, childOut}
	err = cmd.Start()
	childIn.Close()
	childOut.Close()
	if err != nil {
		toChild.Close()
		fromChild.Close()
		return nil, err
	}
	p := &PipePeer{w: toChild, r: fromChild, in: toChild, out: fromChild, done: make(chan error, 1)}
	if raw {
		p.in, p.out = rawPipe(toChild), rawPipe(fromChild)
	}
	go func() { p.done <- cmd.Wait() }()
	// One round trip so that the child's start-up is not timed.
	if err := p.RoundTrips(1); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// RoundTrips sends n requests one at a time, each waiting for its reply.
func (p *PipePeer) RoundTrips(n int) error {
	var req, resp [MsgSize]byte
	for i := range n {
		req[0] = byte(i)
		if _, err := p.in.Write(req[:]); err != nil {
			return err
		}
		if _, err := io.ReadFull(p.out, resp[:]); err != nil {
			return err
		}
	}
	return nil
}

// RoundTripsHandoff is RoundTrips with the replies read by a goroutine of
// their own, which hands each to the waiting caller over a channel: the
// least a round trip costs to an executor whose caller waits on a future
// while a reader goroutine serves the pipe. It is the raw floor plus one
// goroutine wake-up per round trip.
func (p *PipePeer) RoundTripsHandoff(n int) error {
	// One slot: after a failed write the reader's last send (the error
	// Close causes) must not block.
	replies := make(chan error, 1)
	go func() {
		var resp [MsgSize]byte
		for range n {
			_, err := io.ReadFull(p.out, resp[:])
			replies <- err
			if err != nil {
				return
			}
		}
	}()
	var req [MsgSize]byte
	for i := range n {
		req[0] = byte(i)
		if _, err := p.in.Write(req[:]); err != nil {
			// The reader waits for a reply that will not come; Close
			// ends it.
			return err
		}
		if err := <-replies; err != nil {
			return err
		}
	}
	return nil
}

// Pipelined sends n requests keeping up to inflight of them unanswered. A
// writer goroutine writes every request it has a token for in one write
// (batching as a client that flushes when its queue empties); the reader
// returns a token per reply.
func (p *PipePeer) Pipelined(n, inflight int) error {
	tokens := make(chan struct{}, inflight)
	for range inflight {
		tokens <- struct{}{}
	}
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, inflight*MsgSize)
		for sent := 0; sent < n; {
			<-tokens
			k := 1
		more:
			for k < inflight && sent+k < n {
				select {
				case <-tokens:
					k++
				default:
					break more
				}
			}
			if _, err := p.in.Write(buf[:k*MsgSize]); err != nil {
				werr = err
				return
			}
			sent += k
		}
	})
	buf := make([]byte, 64<<10)
	var err error
	for got := 0; got < n*MsgSize; {
		m, rerr := p.out.Read(buf)
		before := got / MsgSize
		got += m
		for range got/MsgSize - before {
			tokens <- struct{}{}
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	wg.Wait()
	return errors.Join(err, werr)
}

// Close stops the child and waits for it.
func (p *PipePeer) Close() error {
	p.w.Close()
	err := <-p.done
	p.r.Close()
	return err
}

// servePipeEcho is the child: it copies everything from in to out, one
// read then one write at a time, until in is closed.
func servePipeEcho(in io.Reader, out io.Writer) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
