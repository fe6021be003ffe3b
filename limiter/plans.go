package limiter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// ErrUnknownPlan is wrapped by the error Plans returns for a plan name it
// does not have.
var ErrUnknownPlan = errors.New("limiter: unknown plan")

// Plans holds named policies (a "free" and a "pro" tier, a policy per
// route) with one Limiter each, and lets them be replaced at run time,
// without a restart and without a lock on the read path: a decision loads
// an immutable table through an atomic pointer, so it sees either the old
// table or the new one, never a half-built one.
//
// Its methods are safe for concurrent use. Call Close when done.
type Plans struct {
	table atomic.Pointer[planTable]
	opts  []Option
	mu    sync.Mutex // serialises Update and Close
}

// planTable is never modified once published.
type planTable struct {
	limiters map[string]*Limiter
	closed   bool
}

// NewPlans returns Plans enforcing policies, with opts applied to every
// plan's Limiter. An invalid policy or option is an error naming the plan.
//
// With WithStore among opts, every plan's buckets live in that one Store's
// key space: if a key can appear under two plans, make the keys distinct
// (examples/gateway prefixes them with the plan's name).
func NewPlans(policies map[string]Policy, opts ...Option) (*Plans, error) {
	p := &Plans{opts: opts}
	t, err := p.build(&planTable{}, policies)
	if err != nil {
		return nil, err
	}
	p.table.Store(t)
	return p, nil
}

// Allow is AllowN(ctx, plan, key, 1).
func (p *Plans) Allow(ctx context.Context, plan, key string) (Decision, error) {
	return p.AllowN(ctx, plan, key, 1)
}

// AllowN is Limiter.AllowN on plan's Limiter. It returns an error wrapping
// ErrUnknownPlan for a plan Plans does not have, and ErrClosed after Close.
func (p *Plans) AllowN(ctx context.Context, plan, key string, n int) (Decision, error) {
	return p.decide(ctx, plan, key, n, false)
}

// Peek is Limiter.Peek on plan's Limiter: the Decision AllowN(ctx, plan,
// key, n) would return now, taking nothing. Its errors are AllowN's.
func (p *Plans) Peek(ctx context.Context, plan, key string, n int) (Decision, error) {
	return p.decide(ctx, plan, key, n, true)
}

// decide is AllowN, or with peek, Peek.
func (p *Plans) decide(ctx context.Context, plan, key string, n int, peek bool) (Decision, error) {
	for {
		t := p.table.Load()
		l, ok := t.limiters[plan]
		if !ok {
			if t.closed {
				return Decision{}, ErrClosed
			}
			return Decision{}, fmt.Errorf("%w %q", ErrUnknownPlan, plan)
		}
		var d Decision
		var err error
		if peek {
			d, err = l.Peek(ctx, key, n)
		} else {
			d, err = l.AllowN(ctx, key, n)
		}
		if errors.Is(err, ErrClosed) && p.table.Load() != t {
			continue // an Update replaced this plan's Limiter meanwhile
		}
		return d, err
	}
}

// Limiter returns plan's current Limiter, for AllowAll or Wait. After an
// Update that removes or recreates the plan, it is closed.
func (p *Plans) Limiter(plan string) (*Limiter, bool) {
	l, ok := p.table.Load().limiters[plan]
	return l, ok
}

// Policies returns the policies in force.
func (p *Plans) Policies() map[string]Policy {
	t := p.table.Load()
	out := make(map[string]Policy, len(t.limiters))
	for name, l := range t.limiters {
		out[name] = l.Policy()
	}
	return out
}

// Update replaces the plans with policies. A plan whose policy is unchanged
// keeps its buckets; a changed plan keeps them too and adopts the new policy
// as Limiter.SetPolicy describes (a change to or from rate.Inf starts the
// plan afresh); a new plan starts empty; a removed plan's Limiter is closed
// once the new table is in place. Either every plan is valid and the whole
// table is replaced at once, or Update returns an error and nothing changes.
func (p *Plans) Update(policies map[string]Policy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.table.Load()
	if old.closed {
		return ErrClosed
	}
	t, err := p.build(old, policies)
	if err != nil {
		return err
	}
	for name, l := range t.limiters {
		if old.limiters[name] == l && l.Policy() != policies[name] {
			l.setPolicy(policies[name]) // validated, and finite as before, by build
		}
	}
	p.table.Store(t)
	for name, l := range old.limiters {
		if t.limiters[name] != l {
			l.Close()
		}
	}
	return nil
}

// build makes the table for policies, reusing old's Limiters where it can.
// It validates everything before creating anything, and on error closes
// what it created.
func (p *Plans) build(old *planTable, policies map[string]Policy) (*planTable, error) {
	for _, name := range slices.Sorted(maps.Keys(policies)) { // the first bad plan by name, every time
		if err := policies[name].Validate(); err != nil {
			return nil, fmt.Errorf("plan %q: %w", name, err)
		}
	}
	t := &planTable{limiters: make(map[string]*Limiter, len(policies))}
	for name, pol := range policies {
		if prev, ok := old.limiters[name]; ok && (pol.Rate == rate.Inf) == prev.inf {
			t.limiters[name] = prev
			continue
		}
		l, err := New(pol, p.opts...)
		if err != nil {
			for n, created := range t.limiters {
				if old.limiters[n] != created {
					created.Close()
				}
			}
			return nil, fmt.Errorf("plan %q: %w", name, err)
		}
		t.limiters[name] = l
	}
	return t, nil
}

// Close closes every plan's Limiter. Later calls return ErrClosed.
func (p *Plans) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.table.Load()
	p.table.Store(&planTable{closed: true})
	for _, l := range old.limiters {
		l.Close()
	}
	return nil
}
