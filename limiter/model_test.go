package limiter

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/internal/ratemodel"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/sweeper"
)

// TestModel drives random sequences of every public call (Allow, AllowN,
// Peek, WaitN with cancellation and deadlines, AllowAll with slow limits, Reset,
// SetPolicy, Plans.Update, sweeper passes, key-cap pressure with keys
// colliding in a tiny array of cells) on several
// Limiters and keys, in fake time, and compares each outcome with
// golang.org/x/time/rate through internal/ratemodel: a reference bucket per
// key that is rate.Limiter's arithmetic plus the refund rule, cross-checked
// against a rate.Limiter on every call rate.Limiter has. What each step
// asserts, and with what tolerance, is written on the step.
func TestModel(t *testing.T) {
	seeds, steps := ratemodel.Seeds(24), 1200
	if testing.Short() {
		seeds = 6
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newModelRun(t, seed)
				for r.step = range steps {
					r.stepOnce()
				}
				r.finish()
			})
		})
	}
}

// modelRates and modelKeys are what the model draws policies and keys from.
var (
	modelRates = []float64{0.5, 3, 10, 250}
	modelKeys  = []string{"a", "b", "10.0.0.1", "2001:db8::/64", strings.Repeat("long", 40)}
)

// keyName is key for messages.
func keyName(key string) string {
	if len(key) > 20 {
		return fmt.Sprintf("%q…(%d bytes)", key[:8], len(key))
	}
	return fmt.Sprintf("%q", key)
}

// A modelRun is one seed's sequence.
type modelRun struct {
	t       *testing.T
	rng     *rand.Rand
	seed    uint64
	step    int
	call    string   // the call being checked, for messages
	history []string // the last steps' calls, for messages
	subs    []*subject
	slow    *Limiter   // a Limiter on slowStore: the slow middle limit of AllowAll
	store   *slowStore // its Store
	waits   []*pendingWait
	ledgers []*ratemodel.Ledger
	owners  []string // whose each ledger is: subject and key
}

// A subject is one Limiter under test and the oracles of its keys.
type subject struct {
	name   string
	l      *Limiter
	p      Policy
	capped bool   // WithMaxKeys below len(modelKeys), tiny cells: decisions are only checked to be stricter
	plans  *Plans // non-nil: l is plans' "plan", and policy changes go through Update
	keys   map[string]*ratemodel.Oracle
}

func randPolicy(rng *rand.Rand) Policy {
	return Policy{Rate: rate.Limit(modelRates[rng.IntN(len(modelRates))]), Burst: 1 + rng.IntN(8)}
}

func newModelRun(t *testing.T, seed uint64) *modelRun {
	r := &modelRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 7))}
	sweep := func() Option { return WithSweepInterval(time.Duration(1+r.rng.IntN(500)) * time.Millisecond) }
	r.subs = append(r.subs, r.newSubject("l0", sweep()), r.newSubject("l1", sweep()))
	if r.rng.IntN(2) == 0 {
		// A tiny array of cells (1–6, in 1 or 2 rows): keys the table does
		// not hold collide in them.
		s := r.newSubject("capped", sweep(), WithMaxKeys(2+r.rng.IntN(3)), withCells(1+r.rng.IntN(6), 1+r.rng.IntN(2)))
		s.capped = true
		r.subs = append(r.subs, s)
	}
	p := randPolicy(r.rng)
	plans, err := NewPlans(map[string]Policy{"plan": p, "other": randPolicy(r.rng)}, sweep())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plans.Close() })
	l, _ := plans.Limiter("plan")
	r.subs = append(r.subs, &subject{name: "plans", l: l, p: p, plans: plans, keys: map[string]*ratemodel.Oracle{}})
	t.Cleanup(func() { // after a failure: end the pending Waits' goroutines
		for _, w := range r.waits {
			for _, c := range w.cancel {
				c()
			}
		}
	})
	r.store = &slowStore{}
	r.slow = mustNew(t, Policy{Rate: 1000, Burst: 1000},
		WithStore(store.Config{Store: r.store, FailClosed: true, Timeout: time.Hour, BreakerFailures: 1 << 30}))
	return r
}

func (r *modelRun) newSubject(name string, opts ...Option) *subject {
	p := randPolicy(r.rng)
	return &subject{name: name, l: mustNew(r.t, p, opts...), p: p, keys: map[string]*ratemodel.Oracle{}}
}

// fatalf fails the run, naming the seed, the step and the call.
func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d step %d: %s "+format+"\nrecent steps:\n%s",
		append(append([]any{r.seed, r.step, r.call}, args...), strings.Join(r.history, "\n"))...)
}

// note adds an entry to the recent history shown with a failure.
func (r *modelRun) note(s string) {
	r.history = append(r.history, "  "+time.Now().Format("04:05.000000000")+" "+s)
	r.history = r.history[max(len(r.history)-16, 0):]
}

// check fails the run on an error from the oracle's own cross-checks.
func (r *modelRun) check(err error) {
	r.t.Helper()
	if err != nil {
		r.fatalf("oracle: %v", err)
	}
}

// oracle returns key's oracle in s, creating a fresh one for a key the
// model has not seen since the start or its Reset.
func (r *modelRun) oracle(s *subject, key string) *ratemodel.Oracle {
	o := s.keys[key]
	if o == nil {
		o = ratemodel.NewOracle(s.p.Rate, s.p.Burst)
		s.keys[key] = o
		r.ledgers = append(r.ledgers, o.Ledger)
		r.owners = append(r.owners, s.name+" "+keyName(key))
	}
	return o
}

func (r *modelRun) cost(s *subject) int { return 1 + r.rng.IntN(s.p.Burst) }

// stepOnce draws one step.
func (r *modelRun) stepOnce() {
	if r.call != "" {
		r.note(fmt.Sprintf("step %d: %s", r.step-1, r.call))
	}
	s := r.subs[r.rng.IntN(len(r.subs))]
	key := modelKeys[r.rng.IntN(len(modelKeys))]
	switch x := r.rng.IntN(100); {
	case x < 20:
		r.call = "sleep"
		r.advance(time.Duration(r.rng.Float64() * 2 * float64(time.Second) / float64(s.p.Rate)))
	case x < 24:
		r.call = s.name + ": sweeper.Pass"
		sweeper.Pass(&s.l.table, s.l.retire)
	case x < 27:
		r.reset(s, key)
	case x < 30:
		r.setPolicy(s)
	case x < 52:
		r.allowN(s, key, r.cost(s))
	case x < 60:
		r.peek(s, key, r.cost(s))
	case x < 68:
		r.honest(s, key)
	case x < 84 && !s.capped:
		r.wait(s, key)
	case !s.capped:
		r.allowAll()
	default:
		r.allowN(s, key, r.cost(s))
	}
}

// allowN runs AllowN (through Plans.AllowN half the time for the plans
// subject) and checks it: Allowed and Remaining equal to the oracle's, and
// when denied, RetryAfter within 1ns of rate.Limiter's reservation delay
// (ours rounds up, rate's truncates). Under key-cap pressure, only that an
// admission is one the oracle makes.
func (r *modelRun) allowN(s *subject, key string, n int) Decision {
	r.call = fmt.Sprintf("%s.AllowN(%s, %d)", s.name, keyName(key), n)
	var d Decision
	var err error
	if s.plans != nil && r.rng.IntN(2) == 0 {
		r.call = fmt.Sprintf("Plans.AllowN(%q, %s, %d)", "plan", keyName(key), n)
		d, err = s.plans.AllowN(context.Background(), "plan", key, n)
	} else {
		d, err = s.l.AllowN(context.Background(), key, n)
	}
	if err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	now, o := time.Now(), r.oracle(s, key)
	level, wait := o.TokensAt(now), o.WaitFor(now, n)
	if s.capped && !d.Allowed {
		return d // the overflow bucket is stricter: the oracle only follows admissions
	}
	g, err := o.Take(now, n)
	r.check(err)
	switch {
	case d.Allowed != g.OK():
		r.fatalf("got Allowed %v, want %v (oracle level %v)", d.Allowed, g.OK(), level)
	case s.capped:
	case d.Remaining != o.Remaining(now):
		r.fatalf("got Remaining %d, want %d", d.Remaining, o.Remaining(now))
	case !d.Allowed && absDur(d.RetryAfter-wait) > 1:
		r.fatalf("got RetryAfter %v, want %v ± 1ns", d.RetryAfter, wait)
	}
	if d.Allowed {
		o.Ledger.Admit(now, n)
	}
	return d
}

// peek runs Peek (through Plans.Peek half the time for the plans subject)
// and checks it against the oracle, which it does not advance: a Peek that
// took anything would show in every later check. Allowed is whether
// rate.Limiter's AllowN would admit (TokensAt(now) short of n by less than
// its 1ns rounding), Remaining is the level after n when admitted and the
// level when denied, RetryAfter within 1ns of the reservation delay, and
// ResetAfter within 1ns of the time the level after the request takes to
// refill. Under key-cap pressure the overflow bucket may answer instead,
// which the oracle does not know. Half the time, the same AllowN follows at
// the same instant (and is checked as usual): it must make the very
// Decision Peek reported, under key-cap pressure too.
func (r *modelRun) peek(s *subject, key string, n int) {
	r.call = fmt.Sprintf("%s.Peek(%s, %d)", s.name, keyName(key), n)
	var d Decision
	var err error
	if s.plans != nil && r.rng.IntN(2) == 0 {
		r.call = fmt.Sprintf("Plans.Peek(%q, %s, %d)", "plan", keyName(key), n)
		d, err = s.plans.Peek(context.Background(), "plan", key, n)
	} else {
		d, err = s.l.Peek(context.Background(), key, n)
	}
	if err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	call := r.call
	if !s.capped {
		now, o := time.Now(), r.oracle(s, key)
		level, wait := o.TokensAt(now), o.WaitFor(now, n)
		allowed, after := wait == 0, level
		if allowed {
			after = level - float64(n)
		}
		reset := time.Duration(math.Ceil((float64(s.p.Burst) - after) / float64(s.p.Rate) * float64(time.Second)))
		switch {
		case d.Allowed != allowed:
			r.fatalf("got Allowed %v, want %v (oracle level %v)", d.Allowed, allowed, level)
		case d.Remaining != max(int(after), 0):
			r.fatalf("got Remaining %d, want %d (oracle level %v)", d.Remaining, max(int(after), 0), level)
		case !allowed && absDur(d.RetryAfter-wait) > 1:
			r.fatalf("got RetryAfter %v, want %v ± 1ns", d.RetryAfter, wait)
		case allowed && d.RetryAfter != 0:
			r.fatalf("got RetryAfter %v with Allowed, want 0", d.RetryAfter)
		case absDur(d.ResetAfter-reset) > 1:
			r.fatalf("got ResetAfter %v, want %v ± 1ns", d.ResetAfter, reset)
		case d.Limit != s.p.Burst || d.Fallback:
			r.fatalf("got Limit %d Fallback %v, want %d false", d.Limit, d.Fallback, s.p.Burst)
		}
	}
	if r.rng.IntN(2) == 0 {
		return
	}
	d2 := r.allowN(s, key, n)
	r.call = call + " then AllowN"
	if d2 != d {
		r.fatalf("Peek said %+v, the AllowN after it at the same instant decided %+v", d, d2)
	}
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

// honest checks that RetryAfter is honest: after a denial, sleeping exactly
// RetryAfter (nothing else spending; cancelled waits may give back) and
// repeating the same AllowN is admitted.
func (r *modelRun) honest(s *subject, key string) {
	n := r.cost(s)
	d := r.allowN(s, key, n)
	if d.Allowed || s.capped {
		return
	}
	r.advance(d.RetryAfter)
	call := fmt.Sprintf("%s.AllowN(%s, %d) after sleeping RetryAfter %v", s.name, keyName(key), n, d.RetryAfter)
	if d2 := r.allowN(s, key, n); !d2.Allowed {
		r.call = call
		r.fatalf("got Allowed false (RetryAfter %v), want true", d2.RetryAfter)
	}
}

// reset runs Reset: the key's oracle becomes a fresh rate.Limiter.
func (r *modelRun) reset(s *subject, key string) {
	r.call = fmt.Sprintf("%s.Reset(%s)", s.name, keyName(key))
	if err := s.l.Reset(context.Background(), key); err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	delete(s.keys, key)
}

// setPolicy runs SetPolicy or Plans.Update with a new policy: every key's
// oracle applies SetLimitAt(now, Rate) then SetBurstAt(now, Burst), and its
// ledger checks the windows before the change with the old policy and
// starts the ones after it with the new.
func (r *modelRun) setPolicy(s *subject) {
	p := randPolicy(r.rng)
	r.call = fmt.Sprintf("%s.SetPolicy(%v)", s.name, p)
	var err error
	if s.plans != nil {
		r.call = fmt.Sprintf("Plans.Update(plan: %v)", p)
		err = s.plans.Update(map[string]Policy{"plan": p, "other": randPolicy(r.rng)})
	} else {
		err = s.l.SetPolicy(p)
	}
	if err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	now := time.Now()
	if s.plans != nil && p == s.p {
		return // Plans.Update leaves a plan whose policy is unchanged alone
	}
	for key, o := range s.keys {
		if err := o.SetPolicy(now, p.Rate, p.Burst); err != nil {
			r.fatalf("key %s before the change: %v", keyName(key), err)
		}
	}
	s.p = p
}

// finish lets every pending Wait end and checks every key's windows.
func (r *modelRun) finish() {
	for len(r.waits) > 0 {
		_, at := r.nextEvent()
		r.advance(time.Until(at))
	}
	r.call = "end of run: window bound"
	for i, l := range r.ledgers {
		if err := l.Check(); err != nil {
			r.fatalf("%s: %v", r.owners[i], err)
		}
	}
}

// A modelLimit is one limit of an AllowAll: a subject's key, or the slow
// limit (s nil), which answers after delay with outcome.
type modelLimit struct {
	s       *subject
	key     string
	cost    int // 0 means 1
	delay   time.Duration
	outcome slowOutcome
}

func (r *modelRun) drawLimits() []modelLimit {
	var subs []*subject
	for _, s := range r.subs {
		if !s.capped {
			subs = append(subs, s)
		}
	}
	lims := make([]modelLimit, 2+r.rng.IntN(2))
	for i := range lims {
		s := subs[r.rng.IntN(len(subs))]
		lims[i] = modelLimit{s: s, key: modelKeys[r.rng.IntN(len(modelKeys))], cost: r.rng.IntN(s.p.Burst + 1)}
	}
	if r.rng.IntN(4) == 0 { // the same Limiter and key twice
		lims[1+r.rng.IntN(len(lims)-1)] = lims[0]
	}
	if len(lims) == 3 && r.rng.IntN(2) == 0 {
		lims[1] = modelLimit{delay: r.slowDelay(), outcome: slowOutcome(r.rng.IntN(3))}
	}
	return lims
}

// slowDelay is a delay for the slow limit that ends before the next
// cancellation of a pending Wait (the model cancels from this goroutine,
// which AllowAll holds meanwhile).
func (r *modelRun) slowDelay() time.Duration {
	d := time.Duration(r.rng.Int64N(int64(2 * time.Second)))
	for _, w := range r.waits {
		if !w.cancelAt.IsZero() {
			d = min(d, time.Until(w.cancelAt)-1)
		}
	}
	return max(d, 0)
}

func (m modelLimit) name(i int) string { return fmt.Sprintf("limit%d", i) }

// allowAll runs AllowAll over 2–3 limits and follows it in the oracles: the
// limits are taken in order, each like AllowN at the instant it is
// reached; after a denial, the earlier admitted ones are refunded at that
// instant by the refund rule (late when a slow limit let time pass), and
// the later ones only inspected. While the slow limit answers, the model
// sometimes spends from the first limit's key itself (an AllowN halfway
// through the delay, checked like any other), so that a late refund lands
// on a bucket others spent from meanwhile. It checks Allowed and DeniedBy,
// and without a slow limit, RetryAfter within 1ns of the largest wait
// among the denying limits.
func (r *modelRun) allowAll() {
	lims := r.drawLimits()
	args := make([]Limit, len(lims))
	var desc []string
	for i, m := range lims {
		if m.s == nil {
			args[i] = Limit{Name: m.name(i), Limiter: r.slow, Key: fmt.Sprintf("slow-%d", r.step)}
			r.store.delay, r.store.outcome = m.delay, m.outcome
			desc = append(desc, fmt.Sprintf("slow(%v, %v)", m.delay, m.outcome))
			continue
		}
		args[i] = Limit{Name: m.name(i), Limiter: m.s.l, Key: m.key, Cost: m.cost}
		desc = append(desc, fmt.Sprintf("%s(%s, %d)", m.s.name, keyName(m.key), m.cost))
	}
	call := "AllowAll(" + strings.Join(desc, ", ") + ")"
	c := ratemodel.NewComposite(time.Now())
	r.follow(c, lims, 0) // the oracles take the first limit before the call: same instant
	r.store.during = nil
	if first := lims[0]; lims[1].s == nil && c.Allowed && r.rng.IntN(2) == 0 {
		n := r.cost(first.s)
		r.store.during = func() {
			r.allowN(first.s, first.key, n)
			r.call = call + fmt.Sprintf(" with %s.AllowN(%s, %d) during the slow limit", first.s.name, keyName(first.key), n)
		}
	}
	r.call = call
	var each []Decision // AllowEach on half the calls: AllowAll with each limit's part reported
	if r.rng.IntN(2) == 0 {
		each = make([]Decision, len(args))
		r.call = strings.Replace(r.call, "AllowAll", "AllowEach", 1)
	}
	cd, err := AllowEach(context.Background(), each, args...)
	for i := 1; i < len(lims); i++ {
		r.follow(c, lims, i)
	}
	c.Finish()
	deniedBy := ""
	if !c.Allowed {
		deniedBy = lims[c.DeniedBy].name(c.DeniedBy)
	}
	switch {
	case err != nil:
		r.fatalf("got error %v, want nil", err)
	case cd.Allowed != c.Allowed || cd.DeniedBy != deniedBy:
		r.fatalf("got Allowed %v DeniedBy %q, want %v %q", cd.Allowed, cd.DeniedBy, c.Allowed, deniedBy)
	case !c.Allowed && !c.Slow && absDur(cd.RetryAfter-c.Retry) > 1:
		r.fatalf("got RetryAfter %v, want %v ± 1ns", cd.RetryAfter, c.Retry)
	}
	for i := range each { // every limit taken, or the one that denied, reports the request's outcome
		if (c.Allowed || i <= c.DeniedBy) && each[i].Allowed != c.Allowed {
			r.fatalf("AllowEach: limit %d reports Allowed %v, the request's outcome is %v", i, each[i].Allowed, c.Allowed)
		}
	}
}

// follow applies limit i of an AllowAll to the oracles.
func (r *modelRun) follow(c *ratemodel.Composite, lims []modelLimit, i int) {
	m := lims[i]
	if m.s == nil {
		r.check(c.SlowLimit(i, m.delay, m.outcome != slowAdmit))
		return
	}
	r.check(c.Limit(i, r.oracle(m.s, m.key), max(m.cost, 1)))
}
