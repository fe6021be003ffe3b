package limiter

import (
	"context"
	"errors"
	"fmt"
)

// A Limit is one of the limits AllowAll checks a request against: which
// Limiter, which key to charge, and how much.
type Limit struct {
	Name    string // reported in CompositeDecision.DeniedBy, e.g. "per-ip"
	Limiter *Limiter
	Key     string
	Cost    int // tokens to take; 0 means 1
}

// A CompositeDecision is the outcome of AllowAll.
type CompositeDecision struct {
	// Decision is the combined outcome, Allowed only if every limit allowed.
	// When allowed, Limit and Remaining are those of the limit with the
	// fewest tokens left. When denied, they are the first denying limit's,
	// and RetryAfter is the largest wait among the limits that deny, so that
	// a retry after it is not denied again by another of them. ResetAfter is
	// the largest among all limits.
	Decision
	// DeniedBy is the Name of the first limit that denied ("" if allowed).
	DeniedBy string
	// Tightest is the Name of the limit Limit and Remaining come from (the
	// first that denied, or the one with the fewest tokens left), for
	// choosing which policy the response headers describe.
	Tightest string
}

// maxStackLimits is how many limits AllowAll tracks without allocating.
const maxStackLimits = 8

// AllowAll checks one request against several limits at once (per client
// IP, per API key, per route, global) and admits it only if every limit
// does. If a limit denies, the tokens already taken from the others are
// given back, so a denied request never burns quota; the limits after it
// are only inspected, for their RetryAfter.
//
// Limits with a Store give their tokens back too (to the Store, or to the
// prefetched tokens they came from); after a denial they are not
// inspected, since that would cost a round trip.
//
// An error means no decision was made: a limit's error (a nil Limiter, a
// Cost below 0 or above the limit's Burst, a closed Limiter, a nil ctx, ctx
// ending before a Store answered) gives back what was taken and is
// returned, wrapped with the limit's name. A limit whose Store could not
// decide is decided by its failure mode, and the CompositeDecision's
// Fallback says so.
func AllowAll(ctx context.Context, limits ...Limit) (CompositeDecision, error) {
	return AllowEach(ctx, nil, limits...)
}

// AllowEach is AllowAll that also reports each limit's own part of the
// outcome in each, which must be nil or at least as long as limits (or
// AllowEach returns an error): each[i] is what limits[i] says about the
// request, for a response that describes every limit (the RateLimit
// fields of several policies). A limit that admitted the request reports
// its decision; one whose tokens were given back because another limit
// denied reports a denial with the tokens back in Remaining (at most
// Limit) and the request's RetryAfter; the denying limit and the limits
// after it, which were only inspected, report their own denial or
// admission (the inspected ones took nothing).
func AllowEach(ctx context.Context, each []Decision, limits ...Limit) (CompositeDecision, error) {
	if each != nil && len(each) < len(limits) {
		return CompositeDecision{}, fmt.Errorf("limiter: AllowEach: %d decisions for %d limits", len(each), len(limits))
	}
	var stack [maxStackLimits]grant
	var dstack [maxStackLimits]Decision
	grants, decided := stack[:0], dstack[:0] // the limits taken; those and the first that denied
	var out CompositeDecision
	out.Allowed = true
	giveBack := func() {
		for i, g := range grants {
			limits[i].Limiter.refund(ctx, limits[i].Key, g, max(limits[i].Cost, 1))
		}
		grants = grants[:0]
	}
	for i, lim := range limits {
		d, g, err := lim.decide(ctx, !out.Allowed)
		if err != nil {
			giveBack()
			return CompositeDecision{}, fmt.Errorf("limit %q: %w", lim.Name, err)
		}
		out.ResetAfter = max(out.ResetAfter, d.ResetAfter)
		out.Fallback = out.Fallback || d.Fallback
		if out.Allowed {
			decided = append(decided, d)
		}
		if each != nil {
			each[i] = d
		}
		switch {
		case !out.Allowed: // denied already: lim was only inspected
			out.RetryAfter = max(out.RetryAfter, d.RetryAfter)
		case !d.Allowed:
			giveBack()
			out.Allowed, out.DeniedBy, out.Tightest = false, lim.Name, lim.Name
			out.Limit, out.Remaining, out.RetryAfter = d.Limit, d.Remaining, d.RetryAfter
		default:
			grants = append(grants, g)
			if i == 0 || d.Remaining < out.Remaining {
				out.Limit, out.Remaining, out.Tightest = d.Limit, d.Remaining, lim.Name
			}
		}
	}
	for i, d := range decided { // each Limiter's observer sees the request's outcome
		if !out.Allowed {
			d.Allowed, d.RetryAfter = false, out.RetryAfter
			if each != nil && i < len(decided)-1 { // taken, then given back
				each[i].Allowed, each[i].RetryAfter = false, out.RetryAfter
				each[i].Remaining = min(each[i].Remaining+max(limits[i].Cost, 1), each[i].Limit)
			}
		}
		limits[i].Limiter.observed(ctx, limits[i].Key, max(limits[i].Cost, 1), d)
	}
	return out, nil
}

// decide is lim's part of AllowAll: its decision and grant, or with
// inspect, the decision it would make, taking nothing.
func (lim Limit) decide(ctx context.Context, inspect bool) (Decision, grant, error) {
	if lim.Limiter == nil {
		return Decision{}, grant{}, errors.New("limiter: nil Limiter")
	}
	if lim.Cost < 0 {
		return Decision{}, grant{}, fmt.Errorf("%w: cost %d is negative", ErrInvalidCost, lim.Cost)
	}
	n := max(lim.Cost, 1)
	for {
		m := lim.Limiter.pm.Load()
		if err := lim.Limiter.check(ctx, m, n); err != nil {
			return Decision{}, grant{}, err
		}
		var d Decision
		var g grant
		var ok bool
		var err error
		switch {
		case inspect:
			d, ok = lim.Limiter.inspect(m, lim.Key, n)
		case m.inf:
			return m.unlimited(), grant{}, nil
		default:
			d, g, ok, err = lim.Limiter.takeFor(ctx, m, lim.Key, n)
		}
		if ok {
			return d, g, err
		}
		lim.Limiter.awaitPolicy() // SetPolicy is replacing m
	}
}
