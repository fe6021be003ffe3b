package nethttpmw

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/floodgate-go/floodgate/limiter"
)

// editInPlace overwrites every header value of a response in place, as a
// handler or a later middleware may: h[k][i] = … is allowed, the values are
// the response's own.
func editInPlace(h http.Header) {
	for _, vs := range h {
		for i := range vs {
			vs[i] = "edited"
		}
	}
}

// TestHeadersOwnedByResponse: editing one response's header values in place
// changes nothing in any later response, on every path that sets headers:
// allowed, denied (default and legacy fields, plain and problem details),
// dry run, and an error.
func TestHeadersOwnedByResponse(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    limiter.Policy
		opts []Option
		code int
	}{
		{"allowed", limiter.PerSecond(1000), nil, 200},
		{"allowed uncached", limiter.Policy{Rate: 1e6, Burst: 1_000_000}, nil, 200},
		{"allowed legacy", limiter.PerSecond(1000), []Option{WithLegacyHeaders()}, 200},
		{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, nil, 429},
		{"denied legacy", limiter.Policy{Rate: 1e-3, Burst: 1}, []Option{WithLegacyHeaders()}, 429},
		{"denied problem", limiter.Policy{Rate: 1e-3, Burst: 1}, []Option{WithProblemDetails()}, 429},
		{"dry run", limiter.Policy{Rate: 1e-3, Burst: 1}, []Option{WithDryRun(nil)}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := New(newLimiter(t, tt.p), tt.opts...)(okHandler)
				serve(h, get("192.0.2.1:1")) // spends the burst of 1
				for i := range 3 {
					w := serve(h, get("192.0.2.1:1"))
					if w.Code != tt.code {
						t.Fatalf("response %d: %d, want %d", i, w.Code, tt.code)
					}
					checkNotEdited(t, w.Header())
					editInPlace(w.Header())
				}
			})
		})
	}
	t.Run("error", func(t *testing.T) {
		l := newLimiter(t, limiter.PerSecond(5))
		l.Close()
		for _, opts := range [][]Option{nil, {WithProblemDetails()}} {
			h := New(l, opts...)(okHandler)
			for range 3 {
				w := serve(h, get("192.0.2.1:1"))
				if w.Code != 503 {
					t.Fatalf("closed limiter: %d, want 503", w.Code)
				}
				checkNotEdited(t, w.Header())
				editInPlace(w.Header())
			}
		}
	})
}

// TestHeadersOwnedAcrossResponses: responses that are all still alive,
// whose values may lie side by side in one block (see newValues), do not
// share them. Every other response's values are edited in place and
// appended to; the responses between them, served before and after, keep
// exactly the values they were given. Each path that sets values runs more
// responses than a block holds.
func TestHeadersOwnedAcrossResponses(t *testing.T) {
	a, b := newLimiter(t, limiter.PerSecond(1000)), newLimiter(t, limiter.Policy{Rate: 1e-3, Burst: 1_000_000})
	for _, tt := range []struct {
		name string
		p    limiter.Policy
		opts []Option
	}{
		{"allowed", limiter.PerSecond(1000), nil},
		{"allowed recent values", limiter.Policy{Rate: 1e9, Burst: 1_000_000}, nil},
		{"allowed formatted", limiter.Policy{Rate: 1e-3, Burst: 1_000_000}, nil}, // r is new every time
		{"allowed legacy", limiter.PerSecond(1000), []Option{WithLegacyHeaders()}},
		{"denied", limiter.Policy{Rate: 1e-3, Burst: 1}, nil},
		{"denied legacy", limiter.Policy{Rate: 1e-3, Burst: 1}, []Option{WithLegacyHeaders()}},
		{"denied problem", limiter.Policy{Rate: 1e-3, Burst: 1}, []Option{WithProblemDetails()}},
		{"two limits", limiter.PerSecond(1000), []Option{WithLimits(func(_ *http.Request, client string) []limiter.Limit {
			return []limiter.Limit{{Name: "a", Limiter: a, Key: client}, {Name: "b", Limiter: b, Key: client}}
		})}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New(newLimiter(t, tt.p), tt.opts...)(okHandler)
			checkOwnedAcross(t, func() http.Header { return serve(h, get("192.0.2.1:1")).Header() })
		})
	}
	t.Run("error", func(t *testing.T) {
		l := newLimiter(t, limiter.PerSecond(5))
		l.Close()
		h := New(l)(okHandler)
		checkOwnedAcross(t, func() http.Header { return serve(h, get("192.0.2.1:1")).Header() })
	})
}

// checkOwnedAcross serves 3*blockValues responses with serve, keeping
// them all, then edits and appends to every even one and checks that
// every odd one still has the values it was given.
func checkOwnedAcross(t *testing.T, serve func() http.Header) {
	t.Helper()
	var hs []http.Header
	var want []http.Header
	for range 3 * blockValues {
		h := serve()
		if len(h) == 0 {
			t.Fatal("no headers")
		}
		hs, want = append(hs, h), append(want, h.Clone())
	}
	for i := 0; i < len(hs); i += 2 {
		for k, vs := range hs[i] {
			editInPlace(http.Header{k: vs})
			hs[i][k] = append(vs, "appended")
		}
	}
	for i := 1; i < len(hs); i += 2 {
		if !maps.EqualFunc(hs[i], want[i], slices.Equal) {
			t.Fatalf("response %d: %q, want %q: its neighbours' edits and appends leaked into it", i, hs[i], want[i])
		}
	}
}

func checkNotEdited(t *testing.T, h http.Header) {
	t.Helper()
	if len(h) == 0 {
		t.Fatal("no headers")
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, "edited") {
				t.Fatalf("%s: %q: an earlier response's in-place edit leaked into this one", k, vs)
			}
		}
	}
}

// TestHeadersConcurrentEdits: handlers that edit their responses' header
// values in place and append to them while other requests are served do
// not race (run with -race) and never see each other's edits, whichever
// cache the RateLimit values come from.
func TestHeadersConcurrentEdits(t *testing.T) {
	for _, p := range []limiter.Policy{
		limiter.PerSecond(1000),        // values from the table of every pair
		{Rate: 1e-3, Burst: 1_000_000}, // recentValues, a miss on every request
		{Rate: 1e9, Burst: 1_000_000},  // recentValues, hits
	} {
		l := newLimiter(t, p)
		var leaked atomic.Int64
		h := New(l, WithLegacyHeaders())(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			for k, vs := range w.Header() {
				if strings.Contains(vs[0], "edited") {
					leaked.Add(1)
				}
				w.Header()[k] = append(vs, "appended")
			}
			editInPlace(w.Header())
		}))
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for range 200 {
					w := &discardWriter{h: http.Header{}}
					h.ServeHTTP(w, get("192.0.2."+string(rune('1'+g))+":1"))
				}
			})
		}
		wg.Wait()
		if n := leaked.Load(); n > 0 {
			t.Fatalf("%v: %d header values carried another response's in-place edit", p, n)
		}
	}
}

// TestPolicyFollowsSetPolicy: after SetPolicy, the next response advertises
// the new policy in RateLimit-Policy, and its RateLimit agrees with it.
func TestPolicyFollowsSetPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, limiter.PerSecond(10))
		h := New(l, WithLegacyHeaders())(okHandler)
		w := serve(h, get("192.0.2.1:1"))
		if q := checkMember(t, "RateLimit-Policy", w.Header().Get("RateLimit-Policy"), DefaultPolicyName, "q", "w"); q["q"] != 10 || q["w"] != 1 {
			t.Fatalf("before SetPolicy: RateLimit-Policy %v, want q=10 w=1", q)
		}
		if err := l.SetPolicy(limiter.PerMinute(120)); err != nil {
			t.Fatal(err)
		}
		w = serve(h, get("192.0.2.2:1"))
		q := checkMember(t, "RateLimit-Policy", w.Header().Get("RateLimit-Policy"), DefaultPolicyName, "q", "w")
		if q["q"] != 120 || q["w"] != 60 {
			t.Fatalf("after SetPolicy(PerMinute(120)): RateLimit-Policy %v, want q=120 w=60", q)
		}
		r := checkMember(t, "RateLimit", w.Header().Get("RateLimit"), DefaultPolicyName, "r", "t")
		if r["r"] != 119 || r["t"] != 1 {
			t.Fatalf("after SetPolicy: RateLimit %v, want r=119 t=1", r)
		}
		if got := w.Header().Get("X-RateLimit-Limit"); got != "120" {
			t.Fatalf("after SetPolicy: X-RateLimit-Limit %q, want 120", got)
		}
	})
}

// TestPolicyFollowsPlansUpdate: a Gate on a plan's Limiter follows
// Plans.Update as it follows SetPolicy.
func TestPolicyFollowsPlansUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plans, err := limiter.NewPlans(map[string]limiter.Policy{"free": limiter.PerSecond(10)})
		if err != nil {
			t.Fatal(err)
		}
		defer plans.Close()
		l, _ := plans.Limiter("free")
		h := New(l, WithPolicyName("free"))(okHandler)
		serve(h, get("192.0.2.1:1"))
		if err := plans.Update(map[string]limiter.Policy{"free": {Rate: 2, Burst: 99}}); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, get("192.0.2.1:1"))
		q := checkMember(t, "RateLimit-Policy", w.Header().Get("RateLimit-Policy"), "free", "q", "w")
		if q["q"] != 99 || q["w"] != 50 {
			t.Fatalf("after Plans.Update: RateLimit-Policy %v, want q=99 w=50", q)
		}
	})
}
