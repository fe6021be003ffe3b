package nethttpmw

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/floodgate-go/floodgate/limiter"
)

// Check decides r for the client key at cost, on the Gate's limiter or on
// the limits WithLimits chooses for r, and sets h's fields for the outcome
// as Apply does. block reports whether the request must be rejected (a
// denial, unless in dry-run mode). An error means that no decision was
// made; h is then untouched. Guard is Check, then Deny for a blocked
// request.
func (g *Gate) Check(r *http.Request, h http.Header, key string, cost int) (d limiter.Decision, block bool, err error) {
	return g.check(r, h, key, cost, "")
}

// check is Check, which also sets Content-Type: ct on a blocked request if
// ct is not empty (see apply).
func (g *Gate) check(r *http.Request, h http.Header, key string, cost int, ct string) (limiter.Decision, bool, error) {
	var limits []limiter.Limit
	if g.cfg.choose != nil {
		limits = g.cfg.choose(r, key)
	}
	if len(limits) == 0 {
		d, err := g.l.AllowN(r.Context(), key, cost)
		if err != nil {
			return d, false, err
		}
		return d, g.apply(r, h, d, ct), nil
	}
	return g.checkAll(r, h, dedupe(limits), ct)
}

// maxStackLimits is how many limits checkAll handles without allocating
// for them.
const maxStackLimits = 8

func (g *Gate) checkAll(r *http.Request, h http.Header, limits []limiter.Limit, ct string) (limiter.Decision, bool, error) {
	var dstack [maxStackLimits]limiter.Decision
	var fstack [maxStackLimits]*fields
	each, fs := dstack[:], fstack[:]
	if len(limits) > maxStackLimits {
		each, fs = make([]limiter.Decision, len(limits)), make([]*fields, len(limits))
	}
	each, fs = each[:len(limits)], fs[:len(limits)]
	cd, err := limiter.AllowEach(r.Context(), each, limits...)
	if err != nil {
		return limiter.Decision{}, false, err
	}
	for i, lim := range limits {
		fs[i] = g.fieldsOf(lim.Limiter, lim.Name, i)
	}
	d := cd.Decision
	block := !d.Allowed && !g.cfg.dryRun
	setAll(h, fs, each, d, block, g.cfg.legacy, ct)
	g.reportDryRun(r, d)
	return d, block, nil
}

// dedupe drops the limits that repeat an earlier one (the same Limiter and
// Key), so that no request is charged twice on one bucket by a choice that
// lists it twice. It copies only when there is something to drop.
func dedupe(limits []limiter.Limit) []limiter.Limit {
	for i := 1; i < len(limits); i++ {
		if repeats(limits[:i], limits[i]) {
			out := slices.Clone(limits[:i])
			for _, lim := range limits[i+1:] {
				if !repeats(out, lim) {
					out = append(out, lim)
				}
			}
			return out
		}
	}
	return limits
}

func repeats(before []limiter.Limit, lim limiter.Limit) bool {
	for _, b := range before {
		if b.Limiter == lim.Limiter && b.Key == lim.Key {
			return true
		}
	}
	return false
}

// namedFields caches the field values of the limits WithLimits chooses, by
// Limiter and name, following each Limiter's policy as Gate.fields does.
// It holds at most maxNamedFields entries (names come from the server's
// code, so a handful); beyond that, each response formats its values
// (newUntabledFields).
type namedFields struct {
	m sync.Map // fieldsKey -> *atomic.Pointer[fields]
	n atomic.Int64
}

type fieldsKey struct {
	l    *limiter.Limiter
	name string
	pos  int // an unnamed limit's position, which names it (see itemName); 0 otherwise
}

const maxNamedFields = 1024

// fieldsOf returns the field values for the i-th chosen limit, l under name.
func (g *Gate) fieldsOf(l *limiter.Limiter, name string, i int) *fields {
	k := fieldsKey{l: l, name: name}
	if name == "" {
		k.pos = i
	}
	p := l.Policy()
	v, ok := g.named.m.Load(k)
	if !ok {
		if g.named.n.Load() >= maxNamedFields {
			return newUntabledFields(p, itemName(name, i))
		}
		var loaded bool
		if v, loaded = g.named.m.LoadOrStore(k, new(atomic.Pointer[fields])); !loaded {
			g.named.n.Add(1)
		}
	}
	ptr := v.(*atomic.Pointer[fields])
	f := ptr.Load()
	for f == nil || f.p != p {
		nf := newFields(p, itemName(name, i))
		if ptr.CompareAndSwap(f, nf) {
			return nf
		}
		f = ptr.Load()
	}
	return f
}

// itemName is a limit's name as a RateLimit item name: printable ASCII, at
// most 64 bytes, never empty.
func itemName(name string, i int) string {
	if name == "" {
		return "limit" + strconv.Itoa(i)
	}
	b := []byte(name[:min(len(name), 64)])
	for j, c := range b {
		if c < 0x20 || c > 0x7e {
			b[j] = '_'
		}
	}
	return string(b)
}

// setAll writes the fields of several limits into h: one RateLimit-Policy
// and one RateLimit item per limit, as separate values of each field (a
// Structured Field List may be split over field lines), and, if block,
// Retry-After for d, the combined decision; if ct is not empty and block,
// Content-Type and nosniff; if legacy, the X-RateLimit fields of d. Like
// set, every value is the response's own (see newValues). Limits with no
// limit (rate.Inf) have no item.
func setAll(h http.Header, fs []*fields, each []limiter.Decision, d limiter.Decision, block, legacy bool, ct string) {
	k, first := 0, (*fields)(nil) // the items, and the first limit's values
	for _, f := range fs {
		if !f.inf {
			k++
			first = cmp.Or(first, f)
		}
	}
	if k == 0 {
		return
	}
	n := 2*k + extraValues(block, legacy, ct)
	v := newValues(n)
	j := 0
	for i, f := range fs {
		if f.inf {
			continue
		}
		r, t := fieldValues(each[i])
		v[j], v[k+j] = f.policy, f.rateLimit(r, t)
		j++
	}
	h[keyPolicy], h[keyRateLimit] = v[0:k:k], v[k:2*k:2*k]
	num := first.num // any limit's small-number strings will do
	r, t := fieldValues(d)
	i := 2 * k
	if block {
		i = setDenial(h, v, i, num(t), ct)
	}
	if legacy {
		setLegacy(h, v[i:], num(min(int64(d.Limit), maxSFInteger)), num(r), num(t))
	}
}
