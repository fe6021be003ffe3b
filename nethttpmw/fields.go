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

// Bounds on the value caches, so a huge Burst or window costs at most a
// fixed amount of memory; values beyond them are formatted per response.
const (
	maxNums  = 4096
	maxPairs = 16384
)

// fields formats one policy's header values. The strings are formatted
// once and shared, as strings are immutable; the []string values in a
// header map are not: set allocates them for each response (one backing
// array for all of its values), so that a handler that edits
// h["Ratelimit"][0] in place changes its own response only.
type fields struct {
	p      limiter.Policy // the policy the values describe
	inf    bool           // rate.Inf: no fields, nothing is limited
	policy string         // RateLimit-Policy
	limit  string         // X-RateLimit-Limit
	prefix string         // `"name";r=`
	window int64          // w, and the largest t
	nums   []string
	pairs  []atomic.Pointer[string] // RateLimit values by r*(window+1)+t, filled on first use
	burst  int
}

func newFields(p limiter.Policy, name string) *fields {
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
	f.nums = make([]string, min(max(int64(p.Burst), f.window), maxNums-1)+1)
	for i := range f.nums {
		f.nums[i] = strconv.Itoa(i)
	}
	f.limit = f.num(min(int64(p.Burst), maxSFInteger))
	if int64(p.Burst) < maxPairs && f.window < maxPairs { // no overflow below
		if n := (int64(p.Burst) + 1) * (f.window + 1); n <= maxPairs {
			f.pairs = make([]atomic.Pointer[string], n)
		}
	}
	return f
}

// set writes the fields for d into h and, if block, Retry-After, and
// then, if ct is not empty and block, Content-Type: ct and
// X-Content-Type-Options: nosniff (the default denial's, in the same
// allocation). Every value is a slice of length and capacity 1 into one
// array allocated for this response: the response owns its values, and an
// append to one of them copies it rather than overwrite its neighbour.
func (f *fields) set(h http.Header, d limiter.Decision, block, legacy bool, ct string) {
	if f.inf {
		return
	}
	r, t := fieldValues(d)
	rl, cached := f.cachedRateLimit(r, t)
	n := 2 + extraValues(block, legacy, ct)
	var v []string
	if !cached && n == 2 && len(f.prefix) <= maxPrefix {
		// The common case without a cached value (a large Burst, admitted):
		// the value's bytes share the allocation of the array.
		x := new(valuesAndText)
		v = x.v[:]
		rl = x.format(f.prefix, r, t)
	} else {
		v = make([]string, n)
		if !cached {
			rl = f.formatRateLimit(r, t)
		}
	}
	v[0], v[1] = f.policy, rl
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
	return r, ceilSeconds(float64(d.ResetAfter))
}

// retrySeconds is the Retry-After of a denial: whole seconds, rounded up so
// that a client that waits that long is admitted, and at least 1.
func retrySeconds(d limiter.Decision) int64 {
	return max(1, ceilSeconds(float64(d.RetryAfter)))
}

func (f *fields) num(n int64) string {
	if n >= 0 && n < int64(len(f.nums)) {
		return f.nums[n]
	}
	return strconv.FormatInt(n, 10)
}

// cachedRateLimit returns the RateLimit value for r and t from the cache,
// filling its slot on first use, or reports that it has none for them.
func (f *fields) cachedRateLimit(r, t int64) (string, bool) {
	if f.pairs == nil || r > int64(f.burst) || t > f.window {
		return "", false
	}
	slot := &f.pairs[r*(f.window+1)+t]
	v := slot.Load()
	if v == nil {
		s := f.formatRateLimit(r, t)
		v = &s
		slot.Store(v)
	}
	return *v, true
}

// maxPrefix is the longest prefix (`"name";r=`) that valuesAndText holds
// with two Integers of up to 15 digits and ";t=".
const maxPrefix = len(valuesAndText{}.b) - 2*15 - 3

// valuesAndText is a response's two RateLimit field values and the bytes
// of the RateLimit value, in one allocation.
type valuesAndText struct {
	v [2]string
	b [64]byte
}

// format formats the RateLimit value into x.b and returns it as a string
// over those bytes, which are never written again: x is this response's
// alone, and the string is only stored in x.v.
func (x *valuesAndText) format(prefix string, r, t int64) string {
	b := append(x.b[:0:len(x.b)], prefix...)
	b = strconv.AppendInt(b, r, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, t, 10)
	return unsafe.String(&b[0], len(b)) // b is x.b unless the prefix check failed
}

func (f *fields) formatRateLimit(r, t int64) string {
	var buf [96]byte
	b := append(buf[:0], f.prefix...)
	b = strconv.AppendInt(b, r, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, t, 10)
	return string(b)
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
