package limiter

import (
	"sync"
	"sync/atomic"
	"time"
)

// When the table is full, a request for a new key first looks for a bucket
// it can retire in place (makeRoom). Only when there is none, a key that is
// not tracked is served by one bucket shared by every such key: the
// overflow bucket, with the limiter's own Policy. Tracked keys keep their
// own buckets. Under a key spray, new clients therefore share one client's
// worth of capacity until the sweeper frees room; nobody is unlimited.
//
// A key can move from the overflow bucket to a bucket of its own when room
// frees up. A naive move would hand it a full bucket right after it had
// spent tokens from the overflow bucket, letting it exceed Burst + Rate×T.
// So a new bucket starts at min(Burst, overflow level) whenever the overflow
// bucket has been used since it was last full. Seen from one key, its
// buckets then form a single token bucket whose level only ever jumps down
// (to the overflow level, which reflects everyone's spending) or, when the
// overflow bucket is full, to full from full: its admissions stay within
// Burst + Rate×T.
//
// The protocol that makes the level handover race-free:
//
//   - A new bucket is published in the table as pending. Nobody takes from a
//     pending bucket; whoever finds it (its creator or a concurrent request)
//     first settles it, then takes.
//   - The overflow path holds over.mu, sets over.dirty, and only then checks
//     whether its key is in the table; if it is, it uses that bucket instead.
//   - Settling reads over.dirty after the bucket was published. If it is
//     clear, the bucket starts full. If it is set, settling takes over.mu and
//     starts the bucket at the overflow level; if that level is full, it
//     clears dirty.
//
// Publishing then reading dirty, against setting dirty then reading the
// table, is the store-buffer (Dekker) pattern; Go's atomics and sync.Map are
// sequentially consistent, so at least one side sees the other. Either the
// overflow path sees the bucket and uses it, or settling sees dirty and
// waits on over.mu for that path to finish, so its spending is in the level.
//
// The overflow bucket is a bucket like the others (tokens and last, always
// a time), with rate.Limiter's lastEvent in its own fields.
type overflow struct {
	mu        sync.Mutex
	tokens    float64
	last      int64
	lastEvent int64       // the latest reservation's time-to-act, if reservedAhead
	ahead     bool        // a WaitN has reserved ahead on the overflow bucket
	dirty     atomic.Bool // set under mu before each use; cleared under mu only when full
}

// fromOverflow serves key from the overflow bucket: the decision, the wait,
// and the bucket time it was decided at. The outcome is gone if key is in
// the table after all, stale if m is; the caller then starts over.
func (l *Limiter) fromOverflow(m *policyMath, key string, n int, maxWait time.Duration) (Decision, time.Duration, int64, float64, outcome) {
	o := &l.over
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.stale.Load() {
		return Decision{}, 0, 0, 0, stale
	}
	o.dirty.Store(true)
	if _, ok := l.table.lookup(key); ok {
		return Decision{}, 0, 0, 0, gone
	}
	now := max(l.now(), o.last)
	level := m.advance(o.tokens, o.last, now)
	left, d, wait := m.take(level, n, maxWait)
	if d.Allowed {
		o.tokens, o.last = left, now
		if wait > 0 {
			o.lastEvent, o.ahead = now+int64(wait), true
		}
	}
	return d, wait, now, level, decided
}

// settle gives pending bucket b its starting level (see above).
func (l *Limiter) settle(m *policyMath, b *bucket) {
	o := &l.over
	if !o.dirty.Load() {
		b.settle(m, m.burst, l.now())
		return
	}
	o.mu.Lock()
	now := max(l.now(), o.last)
	level := m.advance(o.tokens, o.last, now)
	if level >= m.burst {
		o.dirty.Store(false)
	}
	b.settle(m, level, now)
	o.mu.Unlock()
}

// cancel undoes a reservation on the overflow bucket (see bucket.cancel).
func (o *overflow) cancel(p, r *policyMath, n int, due, full, now int64) outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p.stale.Load() {
		return stale
	}
	s := p.cancelAt(undone{o.tokens, o.last, o.lastEvent, o.ahead}, r, n, due, full, now)
	o.tokens, o.last, o.lastEvent, o.ahead = s.tokens, s.last, s.lastEvent, s.ahead
	return decided
}

// adopt moves the overflow bucket from policy old to p at since (see
// bucket.adopt).
func (o *overflow) adopt(old, p *policyMath, since int64) {
	o.mu.Lock()
	at := max(since, o.last)
	o.tokens, o.last = p.adopt(old, o.tokens, o.last, at), at
	o.mu.Unlock()
}
