package ratemodel

import (
	"errors"
	"time"
)

// A Composite follows one limiter.AllowAll in the oracles, a limit at a
// time, in order: each limit is taken like AllowN at the instant it is
// reached; when one denies, the earlier admitted ones are refunded at that
// instant by the refund rule (late, when a slow limit let time pass), and
// the later ones are only inspected for their wait.
type Composite struct {
	Now      time.Time     // the instant the next limit is reached
	Allowed  bool          // no limit has denied yet
	DeniedBy int           // the index of the first limit that denied, or -1
	Retry    time.Duration // when denied, the largest wait among the denying limits
	Slow     bool          // a slow limit let time pass
	grants   []composed
}

type composed struct {
	o  *Oracle
	g  Grant
	at time.Time
	n  int
}

// NewComposite starts following an AllowAll made at now.
func NewComposite(now time.Time) *Composite {
	return &Composite{Now: now, Allowed: true, DeniedBy: -1}
}

// Limit applies limit i, n tokens from o.
func (c *Composite) Limit(i int, o *Oracle, n int) error {
	if !c.Allowed {
		c.Retry = max(c.Retry, o.WaitFor(c.Now, n))
		return nil
	}
	wait := o.WaitFor(c.Now, n)
	g, err := o.Take(c.Now, n)
	if err != nil || g.OK() {
		c.grants = append(c.grants, composed{o, g, c.Now, n})
		return err
	}
	c.Retry = wait
	return c.deny(i)
}

// SlowLimit applies limit i, one outside the oracles that answers after d
// and denies if deny says so.
func (c *Composite) SlowLimit(i int, d time.Duration, deny bool) error {
	c.Slow = true
	if !c.Allowed {
		return nil
	}
	c.Now = c.Now.Add(d)
	if deny {
		return c.deny(i)
	}
	return nil
}

func (c *Composite) deny(i int) error {
	c.Allowed, c.DeniedBy = false, i
	var errs []error
	for _, tk := range c.grants {
		errs = append(errs, tk.o.Refund(tk.g, c.Now))
	}
	c.grants = nil
	return errors.Join(errs...)
}

// Finish puts an admitted AllowAll's limits in their ledgers.
func (c *Composite) Finish() {
	if c.Allowed {
		for _, tk := range c.grants {
			tk.o.Ledger.Admit(tk.at, tk.n)
		}
	}
}
