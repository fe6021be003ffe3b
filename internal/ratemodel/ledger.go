package ratemodel

import (
	"fmt"
	"slices"
	"time"

	"golang.org/x/time/rate"
)

// A Ledger records one key's admissions, each with its instant and cost,
// in segments of constant policy, and checks the exactness bound: in every
// window [a, b] between two admissions of a segment, the admitted cost is at
// most Burst + Rate×(b − a), give or take Rate×1ns: like rate.Limiter, a
// bucket admits a request whose shortfall refills in under a nanosecond
// (its truncated wait is 0), and that shortfall is carried, never
// compounded. A policy change (or a Reset) starts a segment;
// windows that span one are not checked.
type Ledger struct {
	segs []*Segment
}

// A Segment is the admissions made under one policy.
type Segment struct {
	limit rate.Limit
	burst int
	adm   []admission
}

type admission struct {
	at   time.Time
	cost int
}

// NewLedger returns a ledger whose first segment has the policy limit, burst.
func NewLedger(limit rate.Limit, burst int) *Ledger {
	return &Ledger{segs: []*Segment{{limit: limit, burst: burst}}}
}

// Current is the segment admissions go to now.
func (l *Ledger) Current() *Segment { return l.segs[len(l.segs)-1] }

// Admit records an admission of cost at at in the current segment.
func (l *Ledger) Admit(at time.Time, cost int) { l.Current().Admit(at, cost) }

// Admit records an admission of cost at at in s (a Wait reserved under s's
// policy that returns later).
func (s *Segment) Admit(at time.Time, cost int) { s.adm = append(s.adm, admission{at, cost}) }

// Next checks the current segment and starts a new one with the given
// policy.
func (l *Ledger) Next(limit rate.Limit, burst int) error {
	err := l.Current().Check()
	l.segs = append(l.segs, &Segment{limit: limit, burst: burst})
	return err
}

// Check checks every segment.
func (l *Ledger) Check() error {
	for _, s := range l.segs {
		if err := s.Check(); err != nil {
			return err
		}
	}
	return nil
}

// Check returns an error describing the first window that holds more than
// Burst + Rate×T.
func (s *Segment) Check() error {
	adm := slices.Clone(s.adm)
	slices.SortStableFunc(adm, func(a, b admission) int { return a.at.Compare(b.at) })
	for i := range adm {
		cost := 0
		for j := i; j < len(adm); j++ {
			cost += adm[j].cost
			span := adm[j].at.Sub(adm[i].at)
			bound := float64(s.burst) + float64(s.limit)*(span+time.Nanosecond).Seconds()
			if float64(cost) > bound+1e-9 {
				return fmt.Errorf("admitted cost %d in [%v, %v] (%v), want at most Burst + Rate×(T+1ns) = %.9f (rate %g, burst %d)",
					cost, adm[i].at.Format(stamp), adm[j].at.Format(stamp), span, bound, float64(s.limit), s.burst)
			}
		}
	}
	return nil
}

const stamp = "15:04:05.000000000"
