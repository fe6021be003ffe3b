package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds the script calls sent in one pipeline. A batch of 128
// is about 12 KiB on the wire: large enough that Redis's per-call cost,
// not the round trip, is what a busy instance pays for; small enough that
// one pipeline never holds Redis's single thread for long.
const maxBatch = 128

// maxInFlight bounds a lane's round trips in flight at once. Two lets two
// calls that overlap go out at once, as they would without coalescing,
// and under load lets Redis work on one pipeline while the client reads
// the other's replies and gathers the next.
const maxInFlight = 2

// A lane is where the script calls for a set of keys go: the whole
// client, or with a Redis Cluster, one master. It coalesces concurrent
// calls. While fewer than maxInFlight round trips are in flight, a call
// goes straight out on its caller's goroutine, as it would without
// coalescing; calls that arrive while the lane is full queue, and when a
// round trip returns they all go out as the next pipeline, up to maxBatch
// at once, sent by a flush goroutine that keeps sending pipelines until
// the queue is empty. No call ever waits for a timer, and each waits on
// its own context: one that ends while queued leaves at once (see wait).
type lane struct {
	s    *Store
	addr string       // the node's address, for errors (Cluster only)
	brk  *nodeBreaker // nil: the limiter's breaker alone (not a Cluster)

	mu       sync.Mutex
	inFlight int     // round trips in flight: direct calls and flushes
	queue    []*call // calls waiting for the next pipeline, oldest first
}

// A call is one script call: its arguments, and once made, its outcome.
// Queued calls are owned by the lane until wait returns them.
type call struct {
	ctx   context.Context
	argv  [9]any // evalsha sha 1 key rate burst cost extra [at]
	argc  int
	key   string    // argv[3] points here for a plain client (see Store.eval)
	state callState // under lane.mu
	done  chan struct{}
	val   []int64
	err   error
}

type callState uint8

const (
	queued    callState = iota // in lane.queue
	sent                       // in a pipeline
	abandoned                  // in a pipeline, and its caller has left
	answered                   // val and err are set; done is (or is about to be) signalled
)

// calls recycles calls, but never their done channels: a channel made by a
// goroutine in a testing/synctest bubble belongs to that bubble, and a
// pooled one reused outside it (a Store shared by a test in a bubble and
// one outside) would crash the program. Only a queued call needs one, so
// do makes it when it queues.
var calls = sync.Pool{New: func() any { return new(call) }}

func getCall(ctx context.Context) *call {
	c := calls.Get().(*call)
	c.ctx = ctx
	return c
}

func putCall(c *call) {
	c.ctx, c.val, c.err, c.key, c.done = nil, nil, nil, "", nil
	c.argv = [9]any{}
	calls.Put(c)
}

// args returns the call's command arguments.
func (c *call) args() []any { return c.argv[:c.argc] }

// command returns a new command for the call. (Reusing one command per
// call saved an allocation, but go-redis's IntSliceCmd keeps state beyond
// its value and error, and a reused one gave wrong decisions in
// TestLimiterModel.)
func (c *call) command() *redis.IntSliceCmd {
	return redis.NewIntSliceCmd(c.ctx, c.args()...)
}

// evalCommand turns c into an EVAL, for a Redis that answered NOSCRIPT
// (it lost its script cache), and returns a new command for it.
func (c *call) evalCommand() *redis.IntSliceCmd {
	c.argv[0], c.argv[1] = "eval", argScript
	return c.command()
}

// do makes c and returns its reply. It reports whether the caller still
// owns c (false: a flush goroutine does and will recycle it).
func (ln *lane) do(c *call) (val []int64, err error, owned bool) {
	if ln.s.noCoalesce {
		val, err = ln.s.process(c)
		return val, err, true
	}
	ln.mu.Lock()
	if ln.inFlight < maxInFlight { // a round trip free: go straight out, from this goroutine
		ln.inFlight++
		ln.mu.Unlock()
		val, err = ln.s.process(c)
		ln.mu.Lock()
		if len(ln.queue) > 0 {
			go ln.flush() // the flush takes over this round trip's place
		} else {
			ln.inFlight--
		}
		ln.mu.Unlock()
		return val, err, true
	}
	c.state = queued
	c.done = make(chan struct{}, 1)
	ln.queue = append(ln.queue, c)
	ln.mu.Unlock()
	return ln.wait(c)
}

// wait waits for queued c's answer or the end of its context, whichever
// comes first. A call that leaves while queued is taken out of the queue;
// one that leaves while its pipeline is in flight is marked abandoned and
// left to the flush, which discards its answer: either way the batch and
// the other calls' answers are untouched.
func (ln *lane) wait(c *call) (val []int64, err error, owned bool) {
	select {
	case <-c.done:
		return c.val, c.err, true
	case <-c.ctx.Done():
	}
	left := fmt.Errorf("store: redis: %w", c.ctx.Err()) // read now: once abandoned, c is the flush's
	ln.mu.Lock()
	switch c.state {
	case queued:
		for i, q := range ln.queue {
			if q == c {
				copy(ln.queue[i:], ln.queue[i+1:])
				ln.queue[len(ln.queue)-1] = nil
				ln.queue = ln.queue[:len(ln.queue)-1]
				break
			}
		}
		ln.mu.Unlock()
		return nil, left, true
	case sent:
		c.state = abandoned
		ln.mu.Unlock()
		return nil, left, false
	default: // answered as the context ended: the answer stands
		ln.mu.Unlock()
		<-c.done
		return c.val, c.err, true
	}
}

// flush sends the queue as pipelines until it is empty, then frees the
// lane. It runs on a goroutine of its own, so that no caller waits for
// anything but its own answer.
func (ln *lane) flush() {
	var batch []*call
	var cmds []redis.Cmder
	pipe := ln.s.client.Pipeline()
	ln.mu.Lock()
	for len(ln.queue) > 0 {
		n := min(len(ln.queue), maxBatch)
		batch = append(batch[:0], ln.queue[:n]...)
		rest := copy(ln.queue, ln.queue[n:])
		clear(ln.queue[rest:])
		ln.queue = ln.queue[:rest]
		for _, c := range batch {
			c.state = sent
		}
		ln.mu.Unlock()
		cmds = ln.s.send(pipe, batch, cmds[:0])
		ln.mu.Lock()
		for _, c := range batch {
			if c.state == abandoned {
				putCall(c)
				continue
			}
			c.state = answered
			c.done <- struct{}{} // buffered, and empty: never blocks
		}
		clear(batch)
	}
	ln.inFlight--
	ln.mu.Unlock()
}

// send runs batch as one pipeline of EVALSHA calls, and the calls Redis
// answers NOSCRIPT as a second one of EVAL, and sets each call's val and
// err. The pipeline's context carries the latest of the calls' deadlines,
// so that no call's wait is cut short by another's; each caller still
// leaves at its own (wait).
func (r *Store) send(pipe redis.Pipeliner, batch []*call, cmds []redis.Cmder) []redis.Cmder {
	ctx, cancel := batchContext(batch)
	defer cancel()
	for _, c := range batch {
		cmds = append(cmds, c.command())
	}
	_ = pipe.BatchProcess(ctx, cmds...)
	_, _ = pipe.Exec(ctx) // each command carries its own error
	retry := false
	for i, c := range batch {
		if err := cmds[i].Err(); err != nil && isNoScript(err) {
			cmds[i] = c.evalCommand()
			_ = pipe.Process(ctx, cmds[i])
			retry = true
		}
	}
	if retry {
		_, _ = pipe.Exec(ctx)
	}
	for i, c := range batch {
		cmd := cmds[i].(*redis.IntSliceCmd)
		if err := cmd.Err(); err != nil {
			c.err = fmt.Errorf("store: redis: %w", err)
		} else {
			c.val = cmd.Val()
		}
	}
	clear(cmds)
	return cmds
}

// batchContext returns the context a pipeline runs under: the first call's
// values, no cancellation, and the latest deadline among the calls (none
// if any call has none: the client's own timeouts then bound it).
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithoutCancel(batch[0].ctx), func() {}
		}
		if d.After(last) {
			last = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), last)
}

// process makes call c on its own: EVALSHA, or EVAL when Redis lost its
// script cache.
func (r *Store) process(c *call) ([]int64, error) {
	cmd := c.command()
	err := r.client.Process(c.ctx, cmd)
	if err != nil && isNoScript(err) {
		cmd = c.evalCommand()
		err = r.client.Process(c.ctx, cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("store: redis: %w", err)
	}
	return cmd.Val(), nil
}
