package nethttpmw

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/floodgate-go/floodgate/limiter"
)

// planService is the first service of WithLimits's documentation:
// anonymous clients 60/min per IP; API keys on plan free (600/min) or pro
// (6,000/min), and every client at most 100/s per IP.
type planService struct {
	perIP, anon *limiter.Limiter
	plans       *limiter.Plans
	keys        map[string]string // API key -> plan
}

func newPlanService(t testing.TB) *planService {
	t.Helper()
	plans, err := limiter.NewPlans(map[string]limiter.Policy{"free": limiter.PerMinute(600), "pro": limiter.PerMinute(6000)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plans.Close() })
	return &planService{perIP: newLimiter(t, limiter.PerSecond(100)), anon: newLimiter(t, limiter.PerMinute(60)),
		plans: plans, keys: map[string]string{"k-free": "free", "k-pro": "pro"}}
}

func (s *planService) limits(r *http.Request, client string) []limiter.Limit {
	perIP := limiter.Limit{Name: "per-ip", Limiter: s.perIP, Key: client}
	if plan, ok := s.keys[r.Header.Get("X-API-Key")]; ok {
		if l, ok := s.plans.Limiter(plan); ok {
			return []limiter.Limit{perIP, {Name: plan, Limiter: l, Key: r.Header.Get("X-API-Key")}}
		}
	}
	return []limiter.Limit{perIP, {Name: "anonymous", Limiter: s.anon, Key: client}}
}

func (s *planService) handler() http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return New(s.perIP, WithLimits(s.limits))(ok)
}

// items parses a response's RateLimit field into name -> (r, t), checking
// RateLimit-Policy names the same policies in the same order.
func items(t *testing.T, h http.Header) map[string][2]int64 {
	t.Helper()
	pol, err := parseSFList(joinField(h.Values("RateLimit-Policy")))
	if err != nil {
		t.Fatalf("RateLimit-Policy %q: %v", h.Values("RateLimit-Policy"), err)
	}
	rl, err := parseSFList(joinField(h.Values("RateLimit")))
	if err != nil {
		t.Fatalf("RateLimit %q: %v", h.Values("RateLimit"), err)
	}
	if len(pol) != len(rl) {
		t.Fatalf("%d policies, %d RateLimit items: %v", len(pol), len(rl), h)
	}
	out := map[string][2]int64{}
	for i, m := range rl {
		name, _ := m.item.(string)
		if pn, _ := pol[i].item.(string); pn != name {
			t.Fatalf("item %d: RateLimit names %q, RateLimit-Policy %q", i, name, pn)
		}
		var r, tt int64 = -1, -1
		for _, p := range m.params {
			switch p.key {
			case "r":
				r = p.val.(int64)
			case "t":
				tt = p.val.(int64)
			}
		}
		out[name] = [2]int64{r, tt}
	}
	return out
}

// joinField joins a field's lines as a recipient combines them (RFC 9110,
// section 5.3).
func joinField(lines []string) string {
	s := ""
	for i, l := range lines {
		if i > 0 {
			s += ", "
		}
		s += l
	}
	return s
}

func serveFrom(h http.Handler, from, apiKey string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = from + ":1234"
	if apiKey != "" {
		r.Header.Set("X-API-Key", apiKey)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestLimitsPlans runs the plan service in fake time (no refill): an
// anonymous client gets its 60, with both limits in the fields; an API key
// on the free plan gets what the per-IP limit leaves (100), and the
// requests the per-IP limit denies cost nothing on the plan.
func TestLimitsPlans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newPlanService(t)
		h := s.handler()
		for i := range 60 {
			w := serveFrom(h, "192.0.2.1", "")
			if w.Code != 200 {
				t.Fatalf("anonymous request %d: %d", i, w.Code)
			}
			if it := items(t, w.Header()); it["anonymous"][0] != int64(59-i) || it["per-ip"][0] != int64(99-i) {
				t.Fatalf("anonymous request %d: items %v", i, it)
			}
		}
		for range 5 {
			w := serveFrom(h, "192.0.2.1", "")
			it := items(t, w.Header())
			if w.Code != 429 || it["anonymous"][0] != 0 || it["per-ip"][0] != 40 || w.Header().Get("Retry-After") != "1" {
				t.Fatalf("anonymous request past 60: %d, items %v, Retry-After %q; want 429, per-ip untouched at 40, Retry-After 1",
					w.Code, it, w.Header().Get("Retry-After"))
			}
		}
		admitted := 0
		for range 150 {
			if w := serveFrom(h, "192.0.2.2", "k-free"); w.Code == 200 {
				admitted++
			}
		}
		free, _ := s.plans.Limiter("free")
		d, err := free.Allow(t.Context(), "k-free")
		if admitted != 100 || err != nil || d.Remaining != 600-100-1 {
			t.Fatalf("free key from one IP: %d admitted (want 100, the per-IP burst); the plan then has %d left (want 499: denials cost nothing), err %v",
				admitted, d.Remaining, err)
		}
		if w := serveFrom(h, "192.0.2.3", "k-pro"); w.Code != 200 || items(t, w.Header())["pro"][0] != 5999 {
			t.Fatalf("pro key: %d %v", w.Code, w.Header())
		}
	})
}

// TestLimitsPlansOverHTTP serves the plan service on loopback and checks
// the fields a real client receives: two policies, each on its own field
// line, parsed as one list.
func TestLimitsPlansOverHTTP(t *testing.T) {
	s := newPlanService(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	do := func(apiKey string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do("k-pro")
	it := items(t, resp.Header)
	if resp.StatusCode != 200 || len(it) != 2 || it["pro"][0] != 5999 || it["per-ip"][0] != 99 {
		t.Fatalf("pro key: %d %v", resp.StatusCode, resp.Header)
	}
	if got := resp.Header.Values("RateLimit-Policy"); len(got) != 2 || got[0] != `"per-ip";q=100;w=1` || got[1] != `"pro";q=6000;w=60` {
		t.Fatalf("RateLimit-Policy %q", got)
	}
	for i := range 61 {
		resp = do("")
		if want := 200; i == 60 {
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("anonymous request 61: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		} else if resp.StatusCode != want {
			t.Fatalf("anonymous request %d: %d", i+1, resp.StatusCode)
		}
	}
}

// TestLimitsLoginRoute is the second service: POST /login 5/min per IP on
// http.ServeMux patterns, every other route 100/s per IP. The route's limit
// replaces the default one, so no route is charged twice: /login's requests
// leave the 100/s bucket alone, and the other routes leave /login's alone.
func TestLimitsLoginRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		general, login := newLimiter(t, limiter.PerSecond(100)), newLimiter(t, limiter.PerMinute(5))
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "welcome") })
		mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "page") })
		byRoute := WithLimits(func(r *http.Request, client string) []limiter.Limit {
			if _, pattern := mux.Handler(r); pattern == "POST /login" {
				return []limiter.Limit{{Name: "login", Limiter: login, Key: client}}
			}
			return nil // the Gate's own: 100/s per IP
		})
		h := New(general, byRoute)(mux)
		do := func(method, path string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, path, nil)
			r.RemoteAddr = "192.0.2.9:1"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		for i := range 7 {
			w := do("POST", "/login")
			if want := 200; i >= 5 {
				want = 429
				if w.Code != want {
					t.Fatalf("login %d: %d, want %d", i, w.Code, want)
				}
			} else if w.Code != want || w.Header().Get("RateLimit-Policy") != `"login";q=5;w=60` {
				t.Fatalf("login %d: %d %q", i, w.Code, w.Header().Get("RateLimit-Policy"))
			}
		}
		for i := range 3 {
			w := do("GET", "/items")
			if w.Code != 200 || w.Header().Get("RateLimit") != fmt.Sprintf(`"default";r=%d;t=1`, 99-i) {
				t.Fatalf("GET /items %d: %d %q; want the 100/s bucket untouched by /login", i, w.Code, w.Header().Get("RateLimit"))
			}
		}
		if s := login.Stats(); s.Allowed != 5 || s.Denied != 2 {
			t.Fatalf("login limiter: %+v, want 5 allowed and 2 denied", s)
		}
	})
}

// TestLimitsDuplicateChargedOnce: a choice that lists one bucket twice
// charges it once.
func TestLimitsDuplicateChargedOnce(t *testing.T) {
	l := newLimiter(t, limiter.PerMinute(10))
	h := New(l, WithLimits(func(_ *http.Request, client string) []limiter.Limit {
		return []limiter.Limit{{Name: "a", Limiter: l, Key: client}, {Name: "b", Limiter: l, Key: client}, {Name: "c", Limiter: l, Key: "other"}}
	}))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := serveFrom(h, "192.0.2.4", "")
	if it := items(t, w.Header()); len(it) != 2 || it["a"][0] != 9 || it["c"][0] != 9 {
		t.Fatalf("items %v, want a and c, each charged once", it)
	}
}

// TestLimitsFollowUpdate is the third service: plans reloaded while the
// middleware serves; the fields follow the new policy.
func TestLimitsFollowUpdate(t *testing.T) {
	s := newPlanService(t)
	h := s.handler()
	if got := serveFrom(h, "192.0.2.5", "k-free").Header().Values("RateLimit-Policy"); len(got) != 2 || got[1] != `"free";q=600;w=60` {
		t.Fatalf("before Update: %q", got)
	}
	if err := s.plans.Update(map[string]limiter.Policy{"free": limiter.PerMinute(300), "pro": limiter.PerMinute(6000)}); err != nil {
		t.Fatal(err)
	}
	w := serveFrom(h, "192.0.2.5", "k-free")
	if got := w.Header().Values("RateLimit-Policy"); len(got) != 2 || got[1] != `"free";q=300;w=60` {
		t.Fatalf("after Update: %q", got)
	}
	if r := items(t, w.Header())["free"][0]; r > 299 {
		t.Fatalf("after Update: free r=%d, want at most 299 (the bucket capped at the new burst, then one request)", r)
	}
}

// TestLimitsOwnedValues: with several limits too, every response owns its
// header values.
func TestLimitsOwnedValues(t *testing.T) {
	s := newPlanService(t)
	h := s.handler()
	w1 := serveFrom(h, "192.0.2.6", "k-pro")
	w1.Header()["Ratelimit-Policy"][0] = "tampered"
	w1.Header()["Ratelimit-Policy"][1] = "tampered"
	w2 := serveFrom(h, "192.0.2.7", "k-pro")
	if got := w2.Header().Values("RateLimit-Policy"); got[0] != `"per-ip";q=100;w=1` || got[1] != `"pro";q=6000;w=60` {
		t.Fatalf("a handler's edit leaked into another response: %q", got)
	}
}

// BenchmarkLimits compares, in one run, an allowed request through the
// middleware with its own limit only and with WithLimits choosing two
// (per IP and per API key), on tracked keys under a policy that admits
// every request.
func BenchmarkLimits(b *testing.B) {
	fast := limiter.Policy{Rate: 1e9, Burst: 1e9}
	perIP, perKey := newLimiter(b, fast), newLimiter(b, fast)
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	two := WithLimits(func(r *http.Request, client string) []limiter.Limit {
		return []limiter.Limit{{Name: "per-ip", Limiter: perIP, Key: client}, {Name: "per-key", Limiter: perKey, Key: r.Header.Get("X-API-Key")}}
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
		want int // RateLimit items
	}{{"single", New(perIP)(ok), 1}, {"two", New(perIP, two)(ok), 2}} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "192.0.2.1:1"
			r.Header.Set("X-API-Key", "k-1")
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				tc.h.ServeHTTP(w, r)
				if w.code != 0 || len(w.h["Ratelimit"]) != tc.want {
					b.Fatalf("status %d, fields %v", w.code, w.h)
				}
			}
		})
	}
}

type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// TestLimitsBeyondNamedCap: once namedFields holds maxNamedFields entries,
// a limit it has not seen gets fields built for the response alone, without
// the tables, and the same header values as a cached limit's.
func TestLimitsBeyondNamedCap(t *testing.T) {
	l := newLimiter(t, limiter.Policy{Rate: 1, Burst: 4000})
	choose := func(_ *http.Request, client string) []limiter.Limit {
		return []limiter.Limit{{Name: "x", Limiter: l, Key: client}}
	}
	cached, err := NewGate(l, WithLimits(choose), WithLegacyHeaders())
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewGate(l, WithLimits(choose), WithLegacyHeaders())
	if err != nil {
		t.Fatal(err)
	}
	full.named.n.Store(maxNamedFields)
	if f := full.fieldsOf(l, "x", 0); f.nums != nil || f.pairs != nil {
		t.Fatalf("beyond the cap: tables of %d numbers and %d pairs, want none", len(f.nums), len(f.pairs))
	}
	for i, g := range []*Gate{cached, full, cached, full} {
		h := g.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		w := serveFrom(h, fmt.Sprintf("192.0.2.%d", 10+i), "")
		if got, want := w.Header().Get("RateLimit-Policy"), `"x";q=4000;w=4000`; got != want {
			t.Fatalf("gate %d: RateLimit-Policy %q, want %q", i, got, want)
		}
		if got, want := w.Header().Get("RateLimit"), `"x";r=3999;t=1`; got != want {
			t.Fatalf("gate %d: RateLimit %q, want %q", i, got, want)
		}
		if got, want := w.Header().Get("X-RateLimit-Limit"), "4000"; got != want {
			t.Fatalf("gate %d: X-RateLimit-Limit %q, want %q", i, got, want)
		}
	}
}
