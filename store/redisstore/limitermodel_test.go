package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/internal/ratemodel"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redisstore"
)

// historyLen is how many recent steps a failure shows.
const historyLen = 24

// TestLimiterModel is limiter's TestModel for the Store tier: Limiters with
// WithStore on miniredis, driven by random sequences of AllowN, Peek,
// AllowAll (with a slow middle limit), Reset, SetPolicy and Store failures
// in fake time, and compared with rate.Limiter through internal/ratemodel.
// The miniredis runs outside the bubble; its clock is set to the bubble's
// before every Store call, and every sleep is whole microseconds (Redis
// TIME's resolution), so the Store's clock is the model's. Its client
// (newBubbleClient) sets no real-time deadline and never retries, so a
// round trip takes no fake time however loaded the machine. A Peek is
// checked like an AllowN that takes nothing, and against the AllowN that
// follows it at the same instant (see storeRun.peek).
//
// Without prefetch, every decision the Store path makes (the deny cache
// included) equals the oracle's: Allowed, Remaining when admitted, and
// RetryAfter within 1µs+1ns when denied. With Prefetch 8, leases may
// under-admit, never over-admit: an admission must be one the oracle makes,
// and the oracle follows only our admissions. In both, every key's
// admissions stay within Burst + Rate×T in every window, with the new
// policy for windows after a SetPolicy. Decisions made by the failure mode
// (Decision.Fallback) are checked only to be denials under
// FailClosed, and are left out of the oracle and the bound. The oracles
// round a take's Full down to whole microseconds, as the Store's
// Result.At is (ratemodel.Oracle.RoundFull): a late refund gives back up
// to Rate×1µs less than at the exact Full, which is the Store's
// arithmetic, not a tolerance. Each step draws from its own seed, so
// TestLimiterModelShrink can shrink a failing run.
func TestLimiterModel(t *testing.T) {
	seeds, steps := ratemodel.Seeds(10), 500
	if testing.Short() {
		seeds = 2
	}
	m := miniredis.RunT(t)
	for _, prefetch := range []bool{false, true} {
		for seed := range seeds {
			t.Run(fmt.Sprintf("prefetch=%v/seed%d", prefetch, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					newStoreRun(t, m, seed, prefetch).run(stepSeeds(seed, steps))
				})
			})
		}
	}
}

// stepSeeds returns the seeds of a run's steps: each step draws what it
// does from its own seed, so that a failing run can be shrunk by leaving
// steps out (see TestLimiterModelShrink).
func stepSeeds(seed uint64, steps int) []uint64 {
	rng := rand.New(rand.NewPCG(seed, 12))
	s := make([]uint64, steps)
	for i := range s {
		s[i] = rng.Uint64()
	}
	return s
}

// run runs the steps with the given seeds, then checks the window bound.
func (r *storeRun) run(steps []uint64) {
	for i, ss := range steps {
		r.step, r.call = i, ""
		r.rng = rand.New(rand.NewPCG(ss, 13))
		r.stepOnce()
		r.note()
	}
	r.finish()
}

// TestLimiterModelShrink shrinks a failing run of TestLimiterModel to a
// minimal sequence of steps and prints it: set
// FLOODGATE_MODEL_SHRINK=prefetch=true/seed58 (the subtest's name), and
// optionally FLOODGATE_MODEL_SHRINK_MATCH to a part of the failure that a
// shrunk run must keep (say "window").
func TestLimiterModelShrink(t *testing.T) {
	var prefetch bool
	var seed uint64
	spec := os.Getenv("FLOODGATE_MODEL_SHRINK")
	if _, err := fmt.Sscanf(spec, "prefetch=%t/seed%d", &prefetch, &seed); err != nil {
		t.Skip("FLOODGATE_MODEL_SHRINK=prefetch=BOOL/seedN names the run to shrink")
	}
	match := os.Getenv("FLOODGATE_MODEL_SHRINK_MATCH")
	m := miniredis.RunT(t)
	steps := stepSeeds(seed, 500)
	tries := 0
	fails := func(steps []uint64) (msg string) {
		tries++
		t.Run(fmt.Sprint("try", tries), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newStoreRun(t, m, seed, prefetch)
				r.verbose = true
				r.failed = func(m string) {
					msg = m
					t.SkipNow()
				}
				r.run(steps)
			})
		})
		if !strings.Contains(msg, match) {
			return ""
		}
		return msg
	}
	msg := fails(steps)
	if msg == "" {
		t.Fatalf("%s does not fail", spec)
	}
	for chunk := len(steps) / 2; chunk >= 1; {
		shrunk := false
		for i := 0; i+chunk <= len(steps); {
			try := append(append([]uint64(nil), steps[:i]...), steps[i+chunk:]...)
			if m := fails(try); m != "" {
				steps, msg, shrunk = try, m, true
				continue
			}
			i += chunk
		}
		if !shrunk {
			chunk /= 2
		}
	}
	t.Logf("%d steps after %d runs: %#v\n%s", len(steps), tries, steps, msg)
}

var (
	lmRates = []float64{0.5, 3, 10, 250}
	lmKeys  = []string{"a", "b", "10.0.0.1", strings.Repeat("long", 40)}
)

// clockStore is a Store that sets miniredis's clock to the bubble's before
// each call, after sleeping delay (a slow Store), and fails on demand.
type clockStore struct {
	s      store.Store
	m      *miniredis.Miniredis
	clock  *runClock
	delay  time.Duration
	fail   bool
	during func() // if set, run halfway through the delay
}

var errDown = errors.New("clockStore: failing on purpose")

// A runClock moves one run's miniredis clock to the bubble's time,
// expiring keys as real time would (FastForward). Each run has its own: a
// run starts at the bubble's epoch, earlier than where the last run left a
// shared clock, and keys must still expire from its first step on.
type runClock struct {
	mu   sync.Mutex
	m    *miniredis.Miniredis
	last time.Time
}

func (c *runClock) sync() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.m.SetTime(now)
	if d := now.Sub(c.last); !c.last.IsZero() && d > 0 {
		c.m.FastForward(d)
	}
	c.last = now
}

func (c *clockStore) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	half := (c.delay / 2).Truncate(time.Microsecond) // whole microseconds, Redis TIME's resolution
	time.Sleep(half)
	if c.during != nil {
		c.during()
	}
	time.Sleep(c.delay - half)
	if c.fail {
		return store.Result{}, errDown
	}
	if err := ctx.Err(); err != nil { // the limiter's Timeout passed in the delay
		return store.Result{}, err
	}
	c.clock.sync()
	return c.s.Take(ctx, key, req)
}

// Peek answers at once (the model's delays are for Take), on the run's
// clock; c.fail fails it too.
func (c *clockStore) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	if c.fail {
		return store.Result{}, errDown
	}
	c.clock.sync()
	return c.s.Peek(ctx, key, req)
}

func (c *clockStore) Reset(ctx context.Context, key string) error {
	c.clock.sync()
	return c.s.Reset(ctx, key)
}

func (c *clockStore) Refund(ctx context.Context, key string, req store.Request, at int64) error {
	c.clock.sync()
	return c.s.Refund(ctx, key, req, at)
}

type storeRun struct {
	t          *testing.T
	rng        *rand.Rand
	seed       uint64
	step       int
	call       string
	prefetch   bool
	history    []string         // the last steps' calls, for messages
	verbose    bool             // keep every step in history (shrinking)
	failed     func(msg string) // if set, called instead of failing (shrinking)
	failClosed bool
	clock      *runClock
	subs       []*storeSubject
	slow       *limiter.Limiter
	slowS      *clockStore
	ledgers    []*ratemodel.Ledger
	owners     []string // whose each ledger is: subject and key
}

type storeSubject struct {
	name string
	l    *limiter.Limiter
	cs   *clockStore
	p    limiter.Policy
	keys map[string]*ratemodel.Oracle
	// loose keys had a bucket when SetPolicy ran: a Store's bucket adopts a
	// new policy at its next decision, as if in force since its last one
	// (the Store cannot know when SetPolicy ran; see limiter's package
	// doc), so rate.Limiter's SetLimitAt no longer predicts them. Until
	// Reset, only the window bound is checked for them.
	loose map[string]bool
}

func lmPolicy(rng *rand.Rand) limiter.Policy {
	return limiter.Policy{Rate: rate.Limit(lmRates[rng.IntN(len(lmRates))]), Burst: 1 + rng.IntN(8)}
}

func newStoreRun(t *testing.T, m *miniredis.Miniredis, seed uint64, prefetch bool) *storeRun {
	r := &storeRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 11)), prefetch: prefetch, clock: &runClock{m: m}}
	r.failClosed = r.rng.IntN(2) == 1
	client := newBubbleClient(t, m.Addr())
	prefetchN := 0
	if prefetch {
		prefetchN = 8
	}
	for _, name := range []string{"l0", "l1"} {
		cs := &clockStore{s: freshStore(t, client), m: m, clock: r.clock}
		p := lmPolicy(r.rng)
		l := newLimiter(t, p, store.Config{Store: cs, FailClosed: r.failClosed, BreakerFailures: 1 << 30, Prefetch: prefetchN})
		r.subs = append(r.subs, &storeSubject{name: name, l: l, cs: cs, p: p, keys: map[string]*ratemodel.Oracle{}, loose: map[string]bool{}})
	}
	r.slowS = &clockStore{s: freshStore(t, client), m: m, clock: r.clock}
	r.slow = newLimiter(t, limiter.Policy{Rate: 1000, Burst: 1000},
		store.Config{Store: r.slowS, FailClosed: true, Timeout: time.Hour, BreakerFailures: 1 << 30})
	return r
}

func (r *storeRun) fatalf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf("seed %d step %d: %s "+format+"\nrecent steps:\n%s",
		append(append([]any{r.seed, r.step, r.call}, args...), strings.Join(r.history, "\n"))...)
	if r.failed != nil {
		r.failed(msg)
	}
	r.t.Fatal(msg)
}

// note adds the step's call, with its time, to the recent history shown
// with a failure.
func (r *storeRun) note() {
	if r.call == "" {
		return
	}
	r.history = append(r.history, fmt.Sprintf("  %s step %d: %s", time.Now().Format("04:05.000000"), r.step, r.call))
	if !r.verbose {
		r.history = r.history[max(len(r.history)-historyLen, 0):]
	}
}

func (r *storeRun) check(err error) {
	r.t.Helper()
	if err != nil {
		r.fatalf("oracle: %v", err)
	}
}

// refresh makes a loose key exact again once the Store holds no bucket for
// it: it is then full under the policy in force, whatever came before, and
// its oracle starts afresh (the old ledger stays in r.ledgers for the
// window bound). Call it before the call under test.
func (r *storeRun) refresh(s *storeSubject, key string) {
	if s.loose[key] && !s.cs.m.Exists(s.cs.s.(*redisstore.Store).Key(key)) {
		delete(s.loose, key)
		delete(s.keys, key)
	}
}

func (r *storeRun) oracle(s *storeSubject, key string) *ratemodel.Oracle {
	o := s.keys[key]
	if o == nil {
		o = ratemodel.NewOracle(s.p.Rate, s.p.Burst)
		o.RoundFull(time.Microsecond) // store.Result.At is whole µs of Redis TIME
		s.keys[key] = o
		r.ledgers = append(r.ledgers, o.Ledger)
		r.owners = append(r.owners, fmt.Sprintf("%s %q", s.name, key))
	}
	return o
}

// sleep sleeps d rounded down to whole microseconds.
func (r *storeRun) sleep(d time.Duration) { time.Sleep(d.Truncate(time.Microsecond)) }

func (r *storeRun) stepOnce() {
	s := r.subs[r.rng.IntN(len(r.subs))]
	key := lmKeys[r.rng.IntN(len(lmKeys))]
	n := 1 + r.rng.IntN(s.p.Burst)
	switch x := r.rng.IntN(100); {
	case x < 25:
		r.call = "sleep"
		r.sleep(time.Duration(r.rng.Float64() * 2 * float64(time.Second) / float64(s.p.Rate)))
	case x < 28:
		r.call = fmt.Sprintf("%s.Reset(%q)", s.name, key[:min(len(key), 8)])
		if err := s.l.Reset(context.Background(), key); err != nil {
			r.fatalf("got error %v, want nil", err)
		}
		delete(s.keys, key)
		delete(s.loose, key)
	case x < 32:
		r.setPolicy(s)
	case x < 36:
		s.cs.fail = true
		r.allowN(s, key, n)
		s.cs.fail = false
	case x < 44 && !r.prefetch:
		r.honest(s, key, n)
	case x < 62:
		r.allowAll()
	case x < 72:
		s.cs.fail = r.rng.IntN(5) == 0
		r.peek(s, key, n)
		s.cs.fail = false
	default:
		r.allowN(s, key, n)
	}
}

// allowN runs AllowN and checks it (see TestLimiterModel).
func (r *storeRun) allowN(s *storeSubject, key string, n int) limiter.Decision {
	r.call = fmt.Sprintf("%s.AllowN(%q, %d) (store failing: %v)", s.name, key[:min(len(key), 8)], n, s.cs.fail)
	r.clock.sync()
	r.refresh(s, key)
	d, err := s.l.AllowN(context.Background(), key, n)
	if err != nil {
		r.fatalf("got error %v, want a decision", err)
	}
	if r.verbose {
		r.call += fmt.Sprintf(" = %+v", d)
	}
	if d.Fallback {
		if !s.cs.fail {
			r.fatalf("got a Fallback decision %+v with the Store up", d)
		}
		if r.failClosed && d.Allowed {
			r.fatalf("got Allowed true under FailClosed, want false")
		}
		return d
	}
	// Not a fallback: the Store path decided (with the Store failing, from
	// a lease or the deny cache).
	now, o := time.Now(), r.oracle(s, key)
	if s.loose[key] {
		if d.Allowed {
			o.Ledger.Admit(now, n)
		}
		return d
	}
	level, wait := o.TokensAt(now), o.WaitFor(now, n)
	if r.prefetch && !d.Allowed {
		return d
	}
	g, err := o.Take(now, n)
	r.check(err)
	switch {
	case d.Allowed != g.OK():
		r.fatalf("got Allowed %v, want %v (oracle level %v)", d.Allowed, g.OK(), level)
	case r.prefetch:
	case d.Allowed && d.Remaining != o.Remaining(now):
		r.fatalf("got Remaining %d, want %d", d.Remaining, o.Remaining(now))
	case !d.Allowed && lmAbs(d.RetryAfter-wait) > time.Microsecond+1:
		r.fatalf("got RetryAfter %v, want %v ± 1µs+1ns", d.RetryAfter, wait)
	}
	if d.Allowed {
		o.Ledger.Admit(now, n)
	}
	return d
}

// peek runs Peek and checks it. It takes nothing: the oracle is not
// advanced, so a take would show in every later check. On an exact key
// without prefetch, Allowed is what the oracle's AllowN would say, with
// Remaining when admitted and RetryAfter within 1µs+1ns when denied, as
// allowN checks; with the Store failing, Fallback, and a denial under
// FailClosed. Half the time, AllowN follows at the same instant (and is
// checked as usual): it must make the very Decision Peek reported — with
// prefetch, the same Allowed and Fallback (AllowN may prefetch, which
// lowers its Remaining).
func (r *storeRun) peek(s *storeSubject, key string, n int) {
	r.call = fmt.Sprintf("%s.Peek(%q, %d) (store failing: %v)", s.name, key[:min(len(key), 8)], n, s.cs.fail)
	r.clock.sync()
	r.refresh(s, key)
	d, err := s.l.Peek(context.Background(), key, n)
	if err != nil {
		r.fatalf("got error %v, want a decision", err)
	}
	call := r.call
	switch {
	case d.Fallback && !s.cs.fail:
		r.fatalf("got a Fallback answer %+v with the Store up", d)
	case d.Fallback && r.failClosed && d.Allowed:
		r.fatalf("got Allowed true under FailClosed, want false")
	case d.Fallback || r.prefetch || s.loose[key]:
	default:
		now, o := time.Now(), r.oracle(s, key)
		wait := o.WaitFor(now, n)
		switch allowed := wait == 0; {
		case d.Allowed != allowed:
			r.fatalf("got Allowed %v, want %v (oracle level %v)", d.Allowed, allowed, o.TokensAt(now))
		case d.Allowed && d.Remaining != max(int(o.TokensAt(now)-float64(n)), 0):
			r.fatalf("got Remaining %d, want %d", d.Remaining, max(int(o.TokensAt(now)-float64(n)), 0))
		case !d.Allowed && lmAbs(d.RetryAfter-wait) > time.Microsecond+1:
			r.fatalf("got RetryAfter %v, want %v ± 1µs+1ns", d.RetryAfter, wait)
		}
	}
	if r.rng.IntN(2) == 0 {
		return
	}
	d2 := r.allowN(s, key, n)
	r.call = call + " then AllowN"
	if d2 != d && (!r.prefetch || d2.Allowed != d.Allowed || d2.Fallback != d.Fallback) {
		r.fatalf("Peek said %+v, the AllowN after it at the same instant decided %+v", d, d2)
	}
}

func lmAbs(d time.Duration) time.Duration { return max(d, -d) }

// honest checks that sleeping RetryAfter (rounded up to whole
// microseconds) after a denial admits the same request.
func (r *storeRun) honest(s *storeSubject, key string, n int) {
	d := r.allowN(s, key, n)
	if d.Allowed || d.RetryAfter == 0 {
		return
	}
	wait := (d.RetryAfter + time.Microsecond - 1).Truncate(time.Microsecond)
	time.Sleep(wait)
	if d2 := r.allowN(s, key, n); !d2.Allowed {
		r.call += fmt.Sprintf(" after sleeping RetryAfter %v (%v)", d.RetryAfter, wait)
		r.fatalf("got Allowed false (RetryAfter %v), want true", d2.RetryAfter)
	}
}

// setPolicy runs SetPolicy: every key's oracle applies SetLimitAt then
// SetBurstAt at the instant of the call, and its ledger starts a segment.
func (r *storeRun) setPolicy(s *storeSubject) {
	p := lmPolicy(r.rng)
	r.call = fmt.Sprintf("%s.SetPolicy(%v)", s.name, p)
	if err := s.l.SetPolicy(p); err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	now := time.Now()
	for key, o := range s.keys {
		if err := o.SetPolicy(now, p.Rate, p.Burst); err != nil {
			r.fatalf("key %q before the change: %v", key, err)
		}
		s.loose[key] = true
	}
	s.p = p
}

func (r *storeRun) finish() {
	r.call = "end of run: window bound"
	for i, l := range r.ledgers {
		if err := l.Check(); err != nil {
			r.fatalf("%s: %v", r.owners[i], err)
		}
	}
}

// An lmLimit is one limit of an AllowAll; s nil is the slow limit.
type lmLimit struct {
	s    *storeSubject
	key  string
	cost int
	fail bool
}

func (r *storeRun) drawLimits() []lmLimit {
	lims := make([]lmLimit, 2+r.rng.IntN(2))
	for i := range lims {
		s := r.subs[r.rng.IntN(len(r.subs))]
		lims[i] = lmLimit{s: s, key: lmKeys[r.rng.IntN(len(lmKeys))], cost: 1 + r.rng.IntN(s.p.Burst)}
	}
	if r.rng.IntN(4) == 0 {
		lims[1+r.rng.IntN(len(lims)-1)] = lims[0]
	}
	if len(lims) == 3 && r.rng.IntN(2) == 0 {
		lims[1] = lmLimit{fail: r.rng.IntN(2) == 0}
		r.slowS.delay = time.Duration(r.rng.Int64N(int64(2 * time.Second))).Truncate(time.Microsecond)
	}
	return lims
}

// allowAll runs AllowAll and follows it in the oracles as limiter's
// TestModel does (refunds by the refund rule, late after the slow limit);
// it checks Allowed and DeniedBy. With prefetch, only that an admission is
// one the oracles make.
func (r *storeRun) allowAll() {
	lims := r.drawLimits()
	args := make([]limiter.Limit, len(lims))
	var desc []string
	for i, m := range lims {
		name := fmt.Sprintf("limit%d", i)
		if m.s == nil {
			r.slowS.fail = m.fail
			args[i] = limiter.Limit{Name: name, Limiter: r.slow, Key: fmt.Sprintf("slow-%d", r.step)}
			desc = append(desc, fmt.Sprintf("slow(%v, fail %v)", r.slowS.delay, m.fail))
			continue
		}
		args[i] = limiter.Limit{Name: name, Limiter: m.s.l, Key: m.key, Cost: m.cost}
		desc = append(desc, fmt.Sprintf("%s(%q, %d)", m.s.name, m.key[:min(len(m.key), 8)], m.cost))
	}
	call := "AllowAll(" + strings.Join(desc, ", ") + ")"
	start := time.Now()
	r.clock.sync()
	for _, m := range lims {
		if m.s != nil {
			r.refresh(m.s, m.key)
		}
	}
	exact := !r.anyLoose(lims) && !r.prefetch
	c := ratemodel.NewComposite(start)
	r.slowS.during = nil
	if exact {
		r.follow(c, lims, 0) // the oracles take the first limit before the call: same instant
		// While the slow limit answers, spend from the first limit's key, so
		// that a refund after it lands on a bucket others spent from.
		if first := lims[0]; lims[1].s == nil && c.Allowed && r.rng.IntN(2) == 0 {
			n := 1 + r.rng.IntN(first.s.p.Burst)
			r.slowS.during = func() {
				r.allowN(first.s, first.key, n)
				r.call = call + fmt.Sprintf(" with %s.AllowN(%q, %d) during the slow limit", first.s.name, first.key[:min(len(first.key), 8)], n)
			}
		}
	}
	r.call = call
	cd, err := limiter.AllowAll(context.Background(), args...)
	if err != nil {
		r.fatalf("got error %v, want nil", err)
	}
	if r.verbose {
		r.call += fmt.Sprintf(" = %v %q", cd.Allowed, cd.DeniedBy)
	}
	switch {
	case r.anyLoose(lims):
		r.followLoose(lims, cd.Allowed, start)
		return
	case r.prefetch:
		if cd.Allowed {
			r.followAdmitted(lims, start)
		}
		return
	}
	for i := 1; i < len(lims); i++ {
		r.follow(c, lims, i)
	}
	c.Finish()
	deniedBy := ""
	if !c.Allowed {
		deniedBy = fmt.Sprintf("limit%d", c.DeniedBy)
	}
	if cd.Allowed != c.Allowed || cd.DeniedBy != deniedBy {
		r.fatalf("got Allowed %v DeniedBy %q, want %v %q", cd.Allowed, cd.DeniedBy, c.Allowed, deniedBy)
	}
}

// follow applies limit i of an AllowAll to the oracles.
func (r *storeRun) follow(c *ratemodel.Composite, lims []lmLimit, i int) {
	m := lims[i]
	if m.s == nil {
		r.check(c.SlowLimit(i, r.slowS.delay, m.fail))
		return
	}
	r.check(c.Limit(i, r.oracle(m.s, m.key), m.cost))
}

// anyLoose reports whether an AllowAll involves a loose key.
func (r *storeRun) anyLoose(lims []lmLimit) bool {
	for _, m := range lims {
		if m.s != nil && m.s.loose[m.key] {
			return true
		}
	}
	return false
}

// followLoose follows an AllowAll with a loose key in it: every key in it
// becomes loose (the oracles cannot say which limit would deny), and an
// admission goes into the ledgers for the window bound.
func (r *storeRun) followLoose(lims []lmLimit, allowed bool, now time.Time) {
	for _, m := range lims {
		if m.s == nil {
			now = now.Add(r.slowS.delay)
			continue
		}
		m.s.loose[m.key] = true
		if allowed {
			r.oracle(m.s, m.key).Ledger.Admit(now, m.cost)
		}
	}
}

// followAdmitted applies an admitted AllowAll to the oracles, which must
// admit each of its limits.
func (r *storeRun) followAdmitted(lims []lmLimit, now time.Time) {
	for i, m := range lims {
		if m.s == nil {
			now = now.Add(r.slowS.delay)
			continue
		}
		o := r.oracle(m.s, m.key)
		level := o.TokensAt(now)
		g, err := o.Take(now, m.cost)
		r.check(err)
		if !g.OK() {
			r.fatalf("limit%d: got Allowed true, want false (oracle level %v)", i, level)
		}
		o.Ledger.Admit(now, m.cost)
	}
}
