package nethttpmw

import (
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

// The response fields follow draft-ietf-httpapi-ratelimit-headers-10
// ("RateLimit header fields for HTTP", September 2025), whose two fields are
// Structured Field Lists (RFC 9651) of items named by a String:
//
//   - RateLimit-Policy (section "RateLimit-Policy Field"): the quota
//     policy, with the parameters q (the quota, required) and w (the window
//     in seconds). We send q = Burst and w = ceil(Burst/Rate), the time an
//     empty bucket takes to refill: q per w is then at most Rate.
//   - RateLimit (section "RateLimit Field"): the current service limit,
//     with r (the remaining quota, required) and t (seconds until the quota
//     resets). We send r = Decision.Remaining and t = ceil(ResetAfter), the
//     time until the bucket is full; on a denial, t is the Retry-After
//     delay instead, the time until this request would be admitted, so that
//     both fields name the same moment.
//
// Example, for the policy "default" of 10 per second:
//
//	RateLimit-Policy: "default";q=10;w=1
//	RateLimit: "default";r=7;t=1
//
// Integers are capped at the largest Structured Field Integer (15 digits).
//
// Go canonicalises "RateLimit" to "Ratelimit"; the keys below are
// canonical, so they can be assigned to an http.Header map directly.
const (
	keyPolicy     = "Ratelimit-Policy"
	keyRateLimit  = "Ratelimit"
	keyRetryAfter = "Retry-After"
	keyXLimit     = "X-Ratelimit-Limit"
	keyXRemaining = "X-Ratelimit-Remaining"
	keyXReset     = "X-Ratelimit-Reset"

	keyContentType = "Content-Type"
	keyNosniff     = "X-Content-Type-Options"
)

// maxSFInteger is the largest Structured Field Integer (RFC 9651, 3.3.1).
const maxSFInteger = 999_999_999_999_999

// Bounds on the value tables, so a huge Burst or window costs at most a
// fixed amount of memory; beyond them, RateLimit values come from
// recentValues and numbers are formatted per response.
const (
	maxNums  = 4096
	maxPairs = 16384
)

// fields formats one policy's header values. The strings are formatted
// once and shared, as strings are immutable; the []string values in a
// header map are not: set takes them from newValues for each response, so
// that a handler that edits h["Ratelimit"][0] in place, or appends to it,
// changes its own response only.
type fields struct {
	p      limiter.Policy // the policy the values describe
	inf    bool           // rate.Inf: no fields, nothing is limited
	policy string         // RateLimit-Policy
	limit  string         // X-RateLimit-Limit
	prefix string         // `"name";r=`
	window int64          // w, and the largest t
	nums   []string
	pairs  []atomic.Pointer[string] // RateLimit values by r*(window+1)+t, filled on first use
	recent recentValues             // RateLimit values seen lately, when pairs is nil
	burst  int
}

// newFields returns the values of p under name, with the tables of small
// numbers and of RateLimit values (up to maxNums and maxPairs entries),
// for fields kept and used by many responses.
func newFields(p limiter.Policy, name string) *fields {
	f := newUntabledFields(p, name)
	if f.inf {
		return f
	}
	f.nums = make([]string, min(max(int64(p.Burst), f.window), maxNums-1)+1)
	for i := range f.nums {
		f.nums[i] = strconv.Itoa(i)
	}
	if int64(p.Burst) < maxPairs && f.window < maxPairs { // no overflow below
		if n := (int64(p.Burst) + 1) * (f.window + 1); n <= maxPairs {
			f.pairs = make([]atomic.Pointer[string], n)
		}
	}
	return f
}

// newUntabledFields returns the values of p under name without the tables
// of newFields, which would cost far more to build than they save for
// fields used once (fieldsOf beyond its cap): numbers are formatted per
// response, and RateLimit values come from recentValues.
func newUntabledFields(p limiter.Policy, name string) *fields {
	f := &fields{p: p, inf: p.Rate == rate.Inf, burst: p.Burst}
	if f.inf {
		return f
	}
	f.window = max(1, ceilSeconds(float64(p.Burst)/float64(p.Rate)*float64(time.Second)))
	quoted := appendSFString(nil, name)
	pol := append(quoted, ";q="...)
	pol = strconv.AppendInt(pol, min(int64(p.Burst), maxSFInteger), 10)
	pol = append(pol, ";w="...)
	pol = strconv.AppendInt(pol, f.window, 10)
	f.policy = string(pol)
	f.prefix = string(quoted) + ";r="
	f.limit = strconv.FormatInt(min(int64(p.Burst), maxSFInteger), 10)
	return f
}

// set writes the fields for d into h and, if block, Retry-After, and
// then, if ct is not empty and block, Content-Type: ct and
// X-Content-Type-Options: nosniff (the default denial's). Every value is
// a slice of length and capacity 1 into an array of this response's own
// (see newValues): the response owns its values, and an append to one of
// them copies it rather than overwrite its neighbour.
func (f *fields) set(h http.Header, d limiter.Decision, block, legacy bool, ct string) {
	if f.inf {
		return
	}
	r, t := fieldValues(d)
	v := newValues(2 + extraValues(block, legacy, ct))
	v[0], v[1] = f.policy, f.rateLimit(r, t)
	h[keyPolicy], h[keyRateLimit] = v[0:1:1], v[1:2:2]
	i := 2
	if block {
		i = setDenial(h, v, i, f.num(t), ct)
	}
	if legacy {
		setLegacy(h, v[i:], f.limit, f.num(r), f.num(t))
	}
}

// extraValues is how many values beyond the RateLimit fields a response
// gets: Retry-After if block, and then Content-Type and nosniff if ct is
// not empty; the three X-RateLimit fields if legacy.
func extraValues(block, legacy bool, ct string) int {
	n := 0
	if block {
		n++
		if ct != "" {
			n += 2
		}
	}
	if legacy {
		n += 3
	}
	return n
}

// setDenial sets Retry-After: retry and, if ct is not empty, Content-Type:
// ct and X-Content-Type-Options: nosniff, with the values from v[i:]; it
// returns the index of the next free value.
func setDenial(h http.Header, v []string, i int, retry, ct string) int {
	v[i] = retry
	h[keyRetryAfter] = v[i : i+1 : i+1]
	i++
	if ct != "" {
		v[i], v[i+1] = ct, "nosniff"
		h[keyContentType], h[keyNosniff] = v[i:i+1:i+1], v[i+1:i+2:i+2]
		i += 2
	}
	return i
}

// setLegacy sets the X-RateLimit fields with the values from v[:3].
func setLegacy(h http.Header, v []string, limit, remaining, reset string) {
	v[0], v[1], v[2] = limit, remaining, reset
	h[keyXLimit], h[keyXRemaining], h[keyXReset] = v[0:1:1], v[1:2:2], v[2:3:3]
}

// fieldValues is the RateLimit field's r and t for d: the whole tokens
// left, and the seconds until the bucket is full or, on a denial, until
// the request would be admitted (Retry-After).
func fieldValues(d limiter.Decision) (r, t int64) {
	r = min(int64(max(d.Remaining, 0)), maxSFInteger)
	if !d.Allowed {
		return r, retrySeconds(d)
	}
	return r, ceilDuration(d.ResetAfter)
}

// retrySeconds is the Retry-After of a denial: whole seconds, rounded up so
// that a client that waits that long is admitted, and at least 1.
func retrySeconds(d limiter.Decision) int64 {
	return max(1, ceilDuration(d.RetryAfter))
}

func (f *fields) num(n int64) string {
	if n >= 0 && n < int64(len(f.nums)) {
		return f.nums[n]
	}
	return strconv.FormatInt(n, 10)
}

// rateLimit returns the RateLimit value for r and t: from the table of
// every pair if the policy is small enough to have one (filling its slot on
// first use), or else from the values seen lately, or formatted.
func (f *fields) rateLimit(r, t int64) string {
	if f.pairs == nil {
		return f.recent.get(f.prefix, r, t)
	}
	if r > int64(f.burst) || t > f.window {
		return formatRateLimit(f.prefix, r, t)
	}
	slot := &f.pairs[r*(f.window+1)+t]
	v := slot.Load()
	if v == nil {
		s := formatRateLimit(f.prefix, r, t)
		v = &s
		slot.Store(v)
	}
	return *v
}

func formatRateLimit(prefix string, r, t int64) string {
	var buf [176]byte // the longest: a name of 64 escaped bytes (133 with quotes and ";r="), two 15-digit Integers and ";t="
	return string(appendRateLimit(buf[:0], prefix, r, t))
}

func appendRateLimit(b []byte, prefix string, r, t int64) []byte {
	b = append(b, prefix...)
	b = strconv.AppendInt(b, r, 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, t, 10)
}

// recentValues caches RateLimit values of a policy too large for a table
// of every (r, t) pair, in a few slots indexed by a hash of the pair; a
// slot holds the value last formatted for a pair that hashes to it. When
// many clients are far from their limit, as under a large Burst, most of
// them share a few pairs (r = Burst - cost, t = 1), so most responses find
// their value here; a miss formats it, in one allocation, as it would
// without the cache. The strings are immutable, so sharing them is safe.
type recentValues struct {
	slots [recentSlots]atomic.Pointer[recentValue]
}

const (
	recentBits  = 6
	recentSlots = 1 << recentBits // 512 bytes per policy, and at most 64 values
)

type recentValue struct {
	r, t int64
	s    string // over b, or over an array of its own if b is too short; never written again
	b    [64]byte
}

func (c *recentValues) get(prefix string, r, t int64) string {
	slot := &c.slots[(uint64(r)*0x9e3779b97f4a7c15+uint64(t))>>(64-recentBits)]
	if v := slot.Load(); v != nil && v.r == r && v.t == t {
		return v.s
	}
	v := &recentValue{r: r, t: t}
	b := appendRateLimit(v.b[:0], prefix, r, t) // v.b, or a new array for a long name
	v.s = unsafe.String(unsafe.SliceData(b), len(b))
	slot.Store(v)
	return v.s
}

// ceilDuration is d in whole seconds, rounded up, and 0 if d is not
// positive: exact, where ceilSeconds(float64(d)) rounds durations beyond
// 2^53 ns. The largest Duration is 9.2e9 s, below maxSFInteger.
func ceilDuration(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d-1)/time.Second) + 1
}

// ceilSeconds converts float nanoseconds to whole seconds, rounding up and
// saturating at the largest Structured Field Integer.
func ceilSeconds(ns float64) int64 {
	s := math.Ceil(ns / float64(time.Second))
	switch {
	case !(s > 0): // also NaN
		return 0
	case s >= maxSFInteger:
		return maxSFInteger
	}
	return int64(s)
}

// appendSFString appends s as a Structured Field String (RFC 9651, 3.3.3).
// s is printable ASCII (WithPolicyName checks).
func appendSFString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := range len(s) {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
