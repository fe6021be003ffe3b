package nethttpmw

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

func newLimiter(t testing.TB, p limiter.Policy) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func get(remote string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	return r
}

func TestDefaultDenial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(newLimiter(t, spoofPolicy()))(okHandler)
		for range spoofBurst {
			if w := serve(h, get("192.0.2.1:1")); w.Code != http.StatusOK || w.Body.String() != "ok" {
				t.Fatalf("within burst: %d %q", w.Code, w.Body)
			}
		}
		w := serve(h, get("192.0.2.1:2"))
		if w.Code != http.StatusTooManyRequests || w.Body.String() != "rate limit exceeded\n" ||
			w.Header().Get("Content-Type") != "text/plain; charset=utf-8" || w.Header().Get("Retry-After") == "" {
			t.Fatalf("denial: %d %q %v", w.Code, w.Body, w.Header())
		}
		if w := serve(h, get("192.0.2.2:1")); w.Code != http.StatusOK {
			t.Fatalf("another client: %d", w.Code)
		}
	})
}

func TestProblemDetails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, limiter.Policy{Rate: 1, Burst: 1})
		h := New(l, WithProblemDetails(), WithPolicyName("api"))(okHandler)
		serve(h, get("192.0.2.1:1"))
		w := serve(h, get("192.0.2.1:1"))
		var p struct {
			Type, Title, Detail string
			Status              int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
		if w.Code != 429 || w.Header().Get("Content-Type") != "application/problem+json" ||
			p.Type != "about:blank" || p.Title != "Too Many Requests" || p.Status != 429 || !strings.Contains(p.Detail, `"api"`) {
			t.Fatalf("problem details: %d %v %+v", w.Code, w.Header(), p)
		}
		l.Close()
		w = serve(h, get("192.0.2.1:1"))
		p.Detail = ""
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 503 || p.Status != 503 || p.Detail != "" {
			t.Fatalf("error as problem details: %d %q %v", w.Code, w.Body, err)
		}
	})
}

// TestErrors: when no decision can be made, the default handler rejects
// with a status that says why, and never shows the error's text.
func TestErrors(t *testing.T) {
	closed := newLimiter(t, limiter.PerSecond(5))
	closed.Close()
	keyErr := errors.New("secret internal detail")
	tests := []struct {
		name       string
		l          *limiter.Limiter
		opts       []Option
		status     int
		retryAfter string
		is         error
	}{
		{"closed limiter", closed, nil, 503, "1", limiter.ErrClosed},
		{"cost above burst", newLimiter(t, limiter.PerSecond(5)), []Option{WithCost(func(*http.Request) int { return 6 })}, 500, "", limiter.ErrInvalidCost},
		{"cost zero", newLimiter(t, limiter.PerSecond(5)), []Option{WithCost(func(*http.Request) int { return 0 })}, 500, "", limiter.ErrInvalidCost},
		{"key function error", newLimiter(t, limiter.PerSecond(5)), []Option{WithKeyFunc(func(*http.Request) (string, error) { return "", keyErr })}, 400, "", keyErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := New(tt.l, tt.opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			w := serve(h, get("192.0.2.1:1"))
			if called || w.Code != tt.status || w.Header().Get("Retry-After") != tt.retryAfter ||
				w.Body.String() != http.StatusText(tt.status)+"\n" {
				t.Fatalf("called %v, response %d %q Retry-After %q; want %d %q Retry-After %q",
					called, w.Code, w.Body, w.Header().Get("Retry-After"), tt.status, http.StatusText(tt.status), tt.retryAfter)
			}
			var got error
			h = New(tt.l, append(tt.opts, WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
				got = err
				w.WriteHeader(http.StatusTeapot)
			}))...)(okHandler)
			if w := serve(h, get("192.0.2.1:1")); w.Code != http.StatusTeapot || !errors.Is(got, tt.is) {
				t.Fatalf("custom error handler: %d, err %v; want 418 and an error wrapping %v", w.Code, got, tt.is)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, spoofPolicy())
		h := New(l, WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))(okHandler)
		for range 3 * spoofBurst {
			r := get("192.0.2.1:1")
			r.URL.Path = "/healthz"
			if w := serve(h, r); w.Code != 200 || w.Header().Get("RateLimit") != "" {
				t.Fatalf("skipped request: %d %v", w.Code, w.Header())
			}
		}
		if s := l.Stats(); s.Allowed+s.Denied != 0 {
			t.Fatalf("skipped requests were counted: %+v", s)
		}
		if w := serve(h, get("192.0.2.1:1")); w.Code != 200 || w.Header().Get("RateLimit") == "" {
			t.Fatalf("limited request: %d %v", w.Code, w.Header())
		}
	})
}

func TestCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(newLimiter(t, spoofPolicy()), WithCost(func(r *http.Request) int {
			if r.Method == http.MethodPost {
				return 2
			}
			return 1
		}))(okHandler)
		post := func() int { r := get("192.0.2.1:1"); r.Method = http.MethodPost; return serve(h, r).Code }
		// Burst 5: two POSTs (4 tokens), then a third is denied; a GET still fits.
		if got := []int{post(), post(), post(), serve(h, get("192.0.2.1:1")).Code, serve(h, get("192.0.2.1:1")).Code}; got[0] != 200 || got[1] != 200 || got[2] != 429 || got[3] != 200 || got[4] != 429 {
			t.Fatalf("statuses %v, want [200 200 429 200 429]", got)
		}
	})
}

func TestDryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var would atomic.Int64
		h := New(newLimiter(t, spoofPolicy()), WithDryRun(func(r *http.Request, d limiter.Decision) {
			if d.Allowed || r == nil {
				t.Errorf("dry-run reported %+v", d)
			}
			would.Add(1)
		}))(okHandler)
		for i := range 20 {
			w := serve(h, get("192.0.2.1:1"))
			if w.Code != 200 || w.Header().Get("RateLimit") == "" || w.Header().Get("Retry-After") != "" {
				t.Fatalf("request %d in dry run: %d %v", i, w.Code, w.Header())
			}
			if i >= spoofBurst && !strings.Contains(w.Header().Get("RateLimit"), ";r=0;") {
				t.Fatalf("request %d in dry run: RateLimit %q, want r=0", i, w.Header().Get("RateLimit"))
			}
		}
		if n := would.Load(); n != 20-spoofBurst {
			t.Fatalf("dry run counted %d would-be denials, want %d", n, 20-spoofBurst)
		}
		// A nil function is allowed.
		h = New(newLimiter(t, spoofPolicy()), WithDryRun(nil))(okHandler)
		for range 2 * spoofBurst {
			if w := serve(h, get("192.0.2.1:1")); w.Code != 200 {
				t.Fatalf("dry run without a function blocked: %d", w.Code)
			}
		}
	})
}

func TestDeniedHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(newLimiter(t, limiter.Policy{Rate: 1, Burst: 1}), WithDeniedHandler(func(w http.ResponseWriter, _ *http.Request, d limiter.Decision) {
			if d.Allowed || w.Header().Get("Retry-After") != "1" || w.Header().Get("RateLimit") == "" {
				t.Errorf("denied handler saw %+v and headers %v", d, w.Header())
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))(okHandler)
		serve(h, get("192.0.2.1:1"))
		if w := serve(h, get("192.0.2.1:1")); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("custom denial: %d", w.Code)
		}
	})
}

// TestKeyFunc: keys from the request, composed with the client identity.
func TestKeyFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		id := mustIdentity(t)
		h := New(newLimiter(t, spoofPolicy()), WithKeyFunc(func(r *http.Request) (string, error) {
			if k := r.Header.Get("X-API-Key"); k != "" {
				return "key|" + k, nil
			}
			return "ip|" + id.Key(r), nil
		}))(okHandler)
		count := func(key, remote string) (ok int) {
			for range 2 * spoofBurst {
				r := get(remote)
				if key != "" {
					r.Header.Set("X-API-Key", key)
				}
				if serve(h, r).Code == 200 {
					ok++
				}
			}
			return ok
		}
		// The same API key from two addresses shares a bucket; an address
		// without a key has its own.
		if a, b, c := count("k1", "192.0.2.1:1"), count("k1", "192.0.2.2:1"), count("", "192.0.2.1:1"); a != spoofBurst || b != 0 || c != spoofBurst {
			t.Fatalf("admitted %d, %d, %d; want %d, 0, %d", a, b, c, spoofBurst, spoofBurst)
		}
	})
}

// TestUnidentifiedShareOneBucket: requests without an IP RemoteAddr are
// limited together, never unlimited.
func TestUnidentifiedShareOneBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, spoofPolicy())
		h := New(l)(okHandler)
		ok := 0
		for _, remote := range []string{"", "@", "garbage", "[::1", "1.2.3.4:port", "unix:/tmp/s", "", "@", "x", "y"} {
			if serve(h, get(remote)).Code == 200 {
				ok++
			}
		}
		if ok != spoofBurst || l.Stats().Keys != 1 {
			t.Fatalf("admitted %d with %d keys, want %d with 1 shared key", ok, l.Stats().Keys, spoofBurst)
		}
	})
}

func TestUnlimitedPolicyHasNoFields(t *testing.T) {
	h := New(newLimiter(t, limiter.Policy{Rate: rate.Inf, Burst: 10}))(okHandler)
	for range 50 {
		if w := serve(h, get("192.0.2.1:1")); w.Code != 200 || len(w.Header()) != 1 {
			t.Fatalf("unlimited: %d %v", w.Code, w.Header())
		}
	}
}

func TestNewPanicsOnMisuse(t *testing.T) {
	l := newLimiter(t, limiter.PerSecond(1))
	for name, f := range map[string]func(){
		"nil limiter":      func() { New(nil) },
		"nil option":       func() { New(l, nil) },
		"bad policy name":  func() { New(l, WithPolicyName("tab\t")) },
		"empty name":       func() { New(l, WithPolicyName("")) },
		"nil key function": func() { New(l, WithKeyFunc(nil)) },
		"nil cost":         func() { New(l, WithCost(nil)) },
		"nil skip":         func() { New(l, WithSkip(nil)) },
		"nil denied":       func() { New(l, WithDeniedHandler(nil)) },
		"nil error":        func() { New(l, WithErrorHandler(nil)) },
	} {
		func() {
			defer func() {
				if err, _ := recover().(error); !errors.Is(err, ErrInvalidOption) {
					t.Errorf("%s: recovered %v, want an error wrapping ErrInvalidOption", name, err)
				}
			}()
			f()
		}()
	}
}

// TestReadingAnotherHeaderIsSpoofable shows why the Identity reads only the
// header the proxy writes: configured to read Forwarded behind a proxy that
// writes X-Forwarded-For, a client rotating Forwarded gets a fresh bucket on
// every request. (This is the misconfiguration WithProxyHeader's doc warns
// about, not a default.)
func TestReadingAnotherHeaderIsSpoofable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(newLimiter(t, spoofPolicy()), WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")), WithProxyHeader(HeaderForwarded))(okHandler)
		rng := rand.New(rand.NewPCG(3, 4))
		ok := 0
		for range 50 {
			r := spoofed(rng, "203.0.113.5")
			viaProxy(r, HeaderXForwardedFor, "10.0.0.1")
			if serve(h, r).Code == 200 {
				ok++
			}
		}
		if ok <= spoofBurst {
			t.Fatalf("admitted %d: expected the misconfiguration to over-admit", ok)
		}
	})
}

// TestAllocs: for a returning client the middleware allocates only the
// values it gives the response (which are the response's own), and those
// come from blocks of blockValues (see newValues): on the allowed path
// (with a RateLimit value from the table of every pair, or from the recent
// values for a Burst too large for a table) and on the default denial
// (with Content-Type), a response costs a fraction of an allocation. A
// RateLimit value formatted on a miss costs one allocation, as it did when
// each response had an array of its own.
func TestAllocs(t *testing.T) {
	amortized := 0.1 // at most 5 values a response: a block serves at least 12
	if raceEnabled {
		amortized = 0.5 // sync.Pool drops a quarter of its blocks under -race
	}
	for _, tt := range []struct {
		p    limiter.Policy
		want float64
	}{
		{limiter.Policy{Rate: 1e9, Burst: 1000}, amortized},
		{limiter.Policy{Rate: 1e9, Burst: 1_000_000}, amortized}, // full at every request: r and t repeat
		{limiter.Policy{Rate: 1e-3, Burst: 1}, amortized},
		{limiter.Policy{Rate: 1e-3, Burst: 1_000_000}, 1 + amortized}, // r changes on every request: a miss
	} {
		p := tt.p
		l := newLimiter(t, p)
		h := New(l, WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := &discardWriter{h: http.Header{}}
		rs := []*http.Request{get("192.0.2.1:1"), get("[2001:db8::1]:1"), get("10.0.0.1:1")}
		rs[2].Header.Set("X-Forwarded-For", "198.51.100.1")
		for _, r := range rs {
			h.ServeHTTP(w, r)
			if n := allocsPerRequest(1000, func() { clear(w.h); h.ServeHTTP(w, r) }); n > tt.want {
				t.Errorf("%v, %s: %.3f allocs per request, want at most %v", p, r.RemoteAddr, n, tt.want)
			}
		}
	}
}

// allocsPerRequest is testing.AllocsPerRun without its rounding down to
// a whole number.
func allocsPerRequest(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}

// discardWriter is a ResponseWriter that keeps only its header map.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// TestGuard drives Gate.Guard as an adapter does: it answers a blocked
// request itself (with the default 429, or WithDeniedHandler's), lets an
// admitted or dry-run request pass with its fields set, and on an error
// writes nothing and leaves the headers untouched.
func TestGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		guard := func(g *Gate, cost int) (*httptest.ResponseRecorder, limiter.Decision, bool, error) {
			w := httptest.NewRecorder()
			d, pass, err := g.Guard(w, get("192.0.2.1:1"), "k", cost)
			return w, d, pass, err
		}
		g, err := NewGate(newLimiter(t, limiter.Policy{Rate: 1, Burst: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if w, d, pass, err := guard(g, 1); err != nil || !pass || !d.Allowed || w.Header().Get("RateLimit") == "" || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
			t.Fatalf("admitted: %+v pass %v err %v, headers %v, body %q; want pass, fields set, nothing written", d, pass, err, w.Header(), w.Body)
		}
		w, d, pass, err := guard(g, 1)
		if err != nil || pass || d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("blocked: %+v pass %v err %v; want a denial that does not pass", d, pass, err)
		}
		if w.Code != http.StatusTooManyRequests || w.Body.String() != "rate limit exceeded\n" || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" ||
			w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Retry-After") != "1" || w.Header().Get("RateLimit") == "" {
			t.Fatalf("blocked: wrote %d %q with headers %v; want the default 429", w.Code, w.Body, w.Header())
		}
		if w, _, pass, err := guard(g, 2); err == nil || !errors.Is(err, limiter.ErrInvalidCost) || pass || len(w.Header()) != 0 || w.Body.Len() != 0 {
			t.Fatalf("cost above Burst: pass %v err %v, headers %v, body %q; want ErrInvalidCost, nothing written", pass, err, w.Header(), w.Body)
		}

		var called int
		g, err = NewGate(newLimiter(t, limiter.Policy{Rate: 1, Burst: 1}), WithDeniedHandler(func(w http.ResponseWriter, _ *http.Request, d limiter.Decision) {
			called++
			if w.Header().Get("Content-Type") != "" || w.Header().Get("Retry-After") != "1" {
				t.Errorf("denied handler saw headers %v; want Retry-After and no Content-Type of the default's", w.Header())
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		if err != nil {
			t.Fatal(err)
		}
		guard(g, 1)
		if w, _, pass, err := guard(g, 1); err != nil || pass || called != 1 || w.Code != http.StatusServiceUnavailable {
			t.Fatalf("with a denied handler: %d, pass %v, err %v, handler called %d times", w.Code, pass, err, called)
		}

		g, err = NewGate(newLimiter(t, limiter.Policy{Rate: 1, Burst: 1}), WithDryRun(nil))
		if err != nil {
			t.Fatal(err)
		}
		guard(g, 1)
		if w, d, pass, err := guard(g, 1); err != nil || !pass || d.Allowed || w.Body.Len() != 0 || w.Header().Get("Retry-After") != "" {
			t.Fatalf("dry run: %+v pass %v err %v, headers %v; want a denial that passes, without Retry-After", d, pass, err, w.Header())
		}
	})
}
