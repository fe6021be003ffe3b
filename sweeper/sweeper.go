// Package sweeper retires idle entries from a concurrent table without ever
// changing what the table's users observe.
//
// A Sweeper knows nothing about rate limits. Its caller supplies a retire
// function that decides, for one value, whether the value is
// indistinguishable from a freshly created one (for a token bucket: refilled
// to its burst) and, if so, marks it retired under the value's own lock. The
// sweeper then removes the entry with CompareAndDelete, so an entry replaced
// in the meantime is never removed by mistake.
//
// Eviction is by state, never by age: an entry that is still "remembering"
// something (a drained bucket) is never swept, however long it has been idle.
//
// # The retire protocol
//
// The caller's side of the protocol, which makes sweeping lossless, is:
//
//  1. retire marks the value retired while holding the lock that every use of
//     the value takes, and only if the value is indistinguishable from fresh.
//  2. Every use of a value checks the mark under that same lock, or, for a
//     use that changes nothing (a denial), in the same consistent snapshot
//     as the state it reads, taken without the lock. A use that finds the
//     mark does not touch the value; it deletes the entry itself
//     (CompareAndDelete, so it is harmless if the sweeper won) and starts
//     again with a fresh value.
//
// A use therefore happens either entirely before the mark, in which case the
// mark is only set if the use left the value fresh-equivalent, or entirely
// after it, in which case the use is redone on a new value that starts in the
// same state. No use is ever applied to a value that is then thrown away.
package sweeper

import (
	"sync"
	"sync/atomic"
	"time"
)

// Table is the concurrent map a Sweeper cleans. Range must tolerate
// concurrent deletion, as [sync.Map.Range] does.
type Table[K comparable, V comparable] interface {
	Range(yield func(key K, value V) bool)
	CompareAndDelete(key K, old V) (deleted bool)
}

// Pass walks t once. For each entry for which retire returns true, it
// removes the entry with CompareAndDelete. It returns how many entries it
// removed.
//
// retire must mark the value retired (see the package documentation) before
// returning true; after that, the value must never again be used.
func Pass[K comparable, V comparable](t Table[K, V], retire func(V) bool) (removed int) {
	t.Range(func(k K, v V) bool {
		if retire(v) && t.CompareAndDelete(k, v) {
			removed++
		}
		return true
	})
	return removed
}

// A Sweeper runs [Pass] over a table in its own goroutine: every interval,
// and early (at most once per cooldown) when [Sweeper.Kick] asks for
// pressure relief. Its methods are safe for concurrent use.
type Sweeper struct {
	pass     func() int
	interval time.Duration
	cooldown time.Duration
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	passes  atomic.Uint64
	removed atomic.Uint64
}

// Start starts a goroutine that sweeps t every interval, and returns the
// Sweeper that owns it. The caller must call [Sweeper.Stop] to end the
// goroutine. Start panics if interval is not positive; that is a programming
// error, not a run-time condition.
//
// Kicked passes are spaced by a cooldown that keeps them to about a tenth of
// one core: ten times the last pass's duration, at least 1 ms and at
// most interval/10. A small table under a key spray is thus swept every
// millisecond or so, and a table of a million keys every few hundred
// milliseconds; a caller that kicks on every request costs one pass per
// cooldown, not one per request.
func Start[K comparable, V comparable](t Table[K, V], retire func(V) bool, interval time.Duration) *Sweeper {
	if interval <= 0 {
		panic("sweeper: non-positive interval")
	}
	s := &Sweeper{
		pass:     func() int { return Pass(t, retire) },
		interval: interval,
		cooldown: interval / 10, // the most; see cooldownAfter
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *Sweeper) run() {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	kick := s.kick
	var cooldown <-chan time.Time
	var last time.Duration // how long the last pass took
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		case <-kick:
			// Ignore further kicks until the cooldown ends. A kick sent in
			// the meantime stays buffered and is honoured then.
			kick, cooldown = nil, time.After(s.cooldownAfter(last))
		case <-cooldown:
			kick, cooldown = s.kick, nil
			continue
		}
		start := time.Now()
		s.removed.Add(uint64(s.pass()))
		s.passes.Add(1)
		last = time.Since(start)
	}
}

// minCooldown is the least time between two kicked passes.
const minCooldown = time.Millisecond

// cooldownAfter is the wait before the next kicked pass, after a pass that
// took d: ten times d, within [minCooldown, interval/10].
func (s *Sweeper) cooldownAfter(d time.Duration) time.Duration {
	return max(min(10*d, s.cooldown), min(minCooldown, s.cooldown))
}

// Kick asks for an early pass, for example because the table is full. It
// never blocks.
func (s *Sweeper) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stop ends the sweeper's goroutine and waits for it to exit. A pass in
// progress finishes first. Stop is idempotent.
func (s *Sweeper) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Passes reports how many passes have completed.
func (s *Sweeper) Passes() uint64 { return s.passes.Load() }

// Removed reports how many entries the sweeper's passes have removed.
func (s *Sweeper) Removed() uint64 { return s.removed.Load() }
