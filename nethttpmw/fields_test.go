package nethttpmw

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

// checkMember parses field value v as a one-member List whose item is the
// String name and whose parameters are exactly keys, in order, all
// non-negative Integers; it returns them.
func checkMember(t *testing.T, field, v, name string, keys ...string) map[string]int64 {
	t.Helper()
	list, err := parseSFList(v)
	if err != nil {
		t.Fatalf("%s: %q is not a Structured Field List: %v", field, v, err)
	}
	if len(list) != 1 {
		t.Fatalf("%s: %q has %d members, want 1", field, v, len(list))
	}
	m := list[0]
	if s, ok := m.item.(string); !ok || s != name {
		t.Fatalf("%s: item %#v, want the String %q", field, m.item, name)
	}
	if len(m.params) != len(keys) {
		t.Fatalf("%s: %q has parameters %v, want %v", field, v, m.params, keys)
	}
	got := map[string]int64{}
	for i, p := range m.params {
		n, ok := p.val.(int64)
		if p.key != keys[i] || !ok || n < 0 {
			t.Fatalf("%s: %q parameter %d is %s=%#v, want %s=<non-negative Integer>", field, v, i, p.key, p.val, keys[i])
		}
		got[p.key] = n
	}
	return got
}

// TestFieldSyntax drives the middleware through full buckets, partial
// ones, denials and refills, for several policies, and parses every
// RateLimit, RateLimit-Policy and Retry-After it emits.
func TestFieldSyntax(t *testing.T) {
	policies := []limiter.Policy{
		limiter.PerSecond(10),
		limiter.PerMinute(60),
		limiter.PerHour(1000),
		{Rate: 0.3, Burst: 3},
		{Rate: 1000, Burst: 1},
		{Rate: rate.Every(1e6 * time.Hour), Burst: 2}, // a window longer than 999 years
	}
	names := []string{DefaultPolicyName, `odd "name" \ with escapes`, "x"}
	for i, p := range policies {
		name := names[i%len(names)]
		t.Run(p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, err := limiter.New(p)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				h := New(l, WithPolicyName(name), WithLegacyHeaders())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
				wantW := max(1, int64(math.Ceil(float64(p.Burst)/float64(p.Rate))))
				wantW = min(wantW, maxSFInteger)
				denials := 0
				for step := range 3 * p.Burst {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
					hd := w.Result().Header
					pol := checkMember(t, "RateLimit-Policy", hd.Get("RateLimit-Policy"), name, "q", "w")
					if pol["q"] != int64(p.Burst) || pol["w"] != wantW {
						t.Fatalf("RateLimit-Policy %q: want q=%d w=%d", hd.Get("RateLimit-Policy"), p.Burst, wantW)
					}
					rl := checkMember(t, "RateLimit", hd.Get("RateLimit"), name, "r", "t")
					if rl["r"] > int64(p.Burst) || rl["t"] > wantW {
						t.Fatalf("RateLimit %q is out of range for q=%d w=%d", hd.Get("RateLimit"), p.Burst, wantW)
					}
					if x := hd.Get("X-RateLimit-Remaining"); x != strconv.FormatInt(rl["r"], 10) {
						t.Fatalf("X-RateLimit-Remaining %q, RateLimit r=%d", x, rl["r"])
					}
					if x := hd.Get("X-RateLimit-Reset"); x != strconv.FormatInt(rl["t"], 10) {
						t.Fatalf("X-RateLimit-Reset %q, RateLimit t=%d", x, rl["t"])
					}
					if x := hd.Get("X-RateLimit-Limit"); x != strconv.Itoa(p.Burst) {
						t.Fatalf("X-RateLimit-Limit %q, want %d", x, p.Burst)
					}
					if w.Code == http.StatusOK {
						if ra := hd.Values("Retry-After"); len(ra) != 0 {
							t.Fatalf("Retry-After %q on an admitted request", ra)
						}
						continue
					}
					denials++
					if w.Code != http.StatusTooManyRequests {
						t.Fatalf("status %d, want 200 or 429", w.Code)
					}
					ra, err := strconv.ParseInt(hd.Get("Retry-After"), 10, 64)
					if err != nil || ra < 1 || ra < rl["t"] {
						t.Fatalf("Retry-After %q with RateLimit t=%d: want whole seconds, >= 1, >= t", hd.Get("Retry-After"), rl["t"])
					}
					if rl["t"] != ra {
						t.Fatalf("RateLimit t=%d and Retry-After %d name different moments", rl["t"], ra)
					}
					if step%2 == 0 && ra < 1e6 {
						// A client that waits Retry-After is admitted.
						time.Sleep(time.Duration(ra) * time.Second)
						w := httptest.NewRecorder()
						h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
						if w.Code != http.StatusOK {
							t.Fatalf("after waiting Retry-After %ds: status %d, want 200", ra, w.Code)
						}
					}
				}
				if denials == 0 {
					t.Fatalf("no denial in %d requests: the test did not exercise 429s", 3*p.Burst)
				}
			})
		})
	}
}

// TestFieldsFullBucket: a fresh client sees r = Burst-1 and a t that
// covers the refill of one token.
func TestFieldsFullBucket(t *testing.T) {
	l, _ := limiter.New(limiter.PerMinute(60))
	defer l.Close()
	h := New(l)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got, want := w.Header().Get("RateLimit"), `"default";r=59;t=1`; got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("RateLimit-Policy"), `"default";q=60;w=60`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		if v := w.Header().Values(k); v != nil {
			t.Errorf("%s = %q without WithLegacyHeaders or a denial", k, v)
		}
	}
}

// TestFieldsNoSharedMutation: a handler appending to the fields does not
// change what the next response gets.
func TestFieldsNoSharedMutation(t *testing.T) {
	l, _ := limiter.New(limiter.PerSecond(1000))
	defer l.Close()
	h := New(l)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Add("RateLimit-Policy", `"other";q=1`)
		w.Header().Add("RateLimit", `"other";r=0`)
	}))
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if got := w.Header().Values("RateLimit-Policy"); len(got) != 2 || got[0] != `"default";q=1000;w=1` {
			t.Fatalf("RateLimit-Policy = %q", got)
		}
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, tt := range []struct {
		ns   float64
		want int64
	}{{0, 0}, {-5, 0}, {math.NaN(), 0}, {1, 1}, {1e9, 1}, {1e9 + 1, 2}, {math.MaxInt64, 9223372037}, {1e25, maxSFInteger}, {math.Inf(1), maxSFInteger}} {
		if got := ceilSeconds(tt.ns); got != tt.want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", tt.ns, got, tt.want)
		}
	}
}

func TestCeilDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 0}, {-5, 0}, {math.MinInt64, 0}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2}, {2 * time.Second, 2},
		{1e16 + 1, 1e7 + 1}, // float64(1e16+1) is 1e16: ceilSeconds would say 1e7
		{math.MaxInt64, 9223372037}} {
		if got := ceilDuration(tt.d); got != tt.want {
			t.Errorf("ceilDuration(%d) = %d, want %d", int64(tt.d), got, tt.want)
		}
	}
}

// TestFieldsExtremePolicies: huge bursts and windows neither overflow the
// value tables nor produce values outside Structured Field Integers.
func TestFieldsExtremePolicies(t *testing.T) {
	for _, p := range []limiter.Policy{
		{Rate: 1e-12, Burst: math.MaxInt32},
		{Rate: 1e-300, Burst: 1},
		{Rate: 1e300, Burst: math.MaxInt32},
		{Rate: 1, Burst: math.MaxInt},
	} {
		f := newFields(p, "x")
		h := http.Header{}
		for _, d := range []limiter.Decision{
			{Allowed: true, Limit: p.Burst, Remaining: p.Burst - 1, ResetAfter: math.MaxInt64},
			{Allowed: false, Limit: p.Burst, Remaining: 0, RetryAfter: math.MaxInt64, ResetAfter: math.MaxInt64},
		} {
			f.set(h, d, !d.Allowed, true, "")
			checkMember(t, "RateLimit-Policy", h.Get("RateLimit-Policy"), "x", "q", "w")
			checkMember(t, "RateLimit", h.Get("RateLimit"), "x", "r", "t")
		}
	}
}
