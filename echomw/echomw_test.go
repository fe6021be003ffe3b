package echomw

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

const burst = 5

func policy() limiter.Policy { return limiter.Policy{Rate: rate.Every(1000 * 3600e9), Burst: burst} }

func newLimiter(t testing.TB, p limiter.Policy) *limiter.Limiter {
	t.Helper()
	l, err := limiter.New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func newGate(t testing.TB, l *limiter.Limiter, opts ...nethttpmw.Option) *nethttpmw.Gate {
	t.Helper()
	g, err := nethttpmw.NewGate(l, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newEcho(m echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	e.Use(m)
	e.GET("/*", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

func serve(e *echo.Echo, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.ServeHTTP(w, r)
	return w
}

func get(remote string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = remote
	return r
}

func randAddr(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}).String()
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return netip.AddrFrom16(b).String()
}

// request is client's request after passing through proxies trusted
// proxies that write header h, with every forwarding header spoofed.
func request(rng *rand.Rand, client string, proxies int, h nethttpmw.ProxyHeader) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(client), uint16(1024+rng.IntN(60000))).String()
	r.Header.Set("X-Forwarded-For", randAddr(rng)+", "+randAddr(rng))
	r.Header.Set("X-Real-IP", randAddr(rng))
	r.Header.Set("Forwarded", fmt.Sprintf(`for="%s"`, randAddr(rng)))
	r.Header.Set("True-Client-IP", randAddr(rng))
	for i := range proxies {
		peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
		switch h {
		case nethttpmw.HeaderXForwardedFor:
			r.Header.Add("X-Forwarded-For", peer.String())
		case nethttpmw.HeaderForwarded:
			if peer.Is6() {
				r.Header.Add("Forwarded", fmt.Sprintf(`for="[%s]:1"`, peer))
			} else {
				r.Header.Add("Forwarded", "for="+peer.String())
			}
		case nethttpmw.HeaderXRealIP:
			r.Header.Set("X-Real-IP", peer.String())
		}
		r.RemoteAddr = fmt.Sprintf("10.0.0.%d:443", i+1)
	}
	return r
}

// TestSpoofing is nethttpmw's spoofing table through Echo: rotating
// forwarding headers never buys a client more than its burst. Echo's own
// c.RealIP() would key these requests by the spoofed X-Forwarded-For.
func TestSpoofing(t *testing.T) {
	type tc struct {
		name    string
		proxies int
		header  nethttpmw.ProxyHeader
		opts    []nethttpmw.Option
	}
	cases := []tc{{"no proxy, default options", 0, "", nil}}
	for _, h := range []nethttpmw.ProxyHeader{nethttpmw.HeaderXForwardedFor, nethttpmw.HeaderForwarded, nethttpmw.HeaderXRealIP} {
		opts := []nethttpmw.Option{nethttpmw.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8")), nethttpmw.WithProxyHeader(h)}
		cases = append(cases, tc{"no proxy, trusting " + string(h), 0, h, opts}, tc{"one proxy writing " + string(h), 1, h, opts})
		if h != nethttpmw.HeaderXRealIP {
			cases = append(cases, tc{"two proxies writing " + string(h), 2, h, opts})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, policy())
				e := newEcho(New(l, c.opts...))
				rng := rand.New(rand.NewPCG(5, 6))
				for _, client := range []string{"203.0.113.5", "2001:db8:aa:bb::5", "198.51.100.9"} {
					codes := map[int]int{}
					for range 50 {
						w := serve(e, request(rng, client, c.proxies, c.header))
						codes[w.Code]++
					}
					if codes[200] != burst || codes[429] != 50-burst {
						t.Fatalf("client %s: statuses %v, want %d OK and %d 429", client, codes, burst, 50-burst)
					}
				}
				if k := l.Stats().Keys; k != 3 {
					t.Fatalf("%d keys, want 3", k)
				}
			})
		})
	}
}

// TestNeverRealIP: with an IPExtractor-less Echo, c.RealIP() trusts
// X-Forwarded-For from anyone; the middleware must not.
func TestNeverRealIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEcho(New(newLimiter(t, policy())))
		ok := 0
		for i := range 20 {
			r := get("192.0.2.1:1")
			r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
			r.Header.Set("X-Real-IP", fmt.Sprintf("198.51.100.%d", i))
			if c := e.NewContext(r, nil); c.RealIP() != fmt.Sprintf("198.51.100.%d", i) {
				t.Fatalf("precondition: RealIP() = %q", c.RealIP())
			}
			if serve(e, r).Code == 200 {
				ok++
			}
		}
		if ok != burst {
			t.Fatalf("admitted %d, want %d", ok, burst)
		}
	})
}

func TestDenial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEcho(New(newLimiter(t, policy()), nethttpmw.WithLegacyHeaders()))
		for range burst {
			serve(e, get("192.0.2.1:1"))
		}
		w := serve(e, get("192.0.2.1:1"))
		if w.Code != 429 || w.Body.String() != "rate limit exceeded\n" || w.Header().Get("Retry-After") == "" ||
			w.Header().Get("RateLimit") == "" || w.Header().Get("RateLimit-Policy") == "" || w.Header().Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("denial: %d %q %v", w.Code, w.Body, w.Header())
		}
		w = serve(e, get("192.0.2.2:1"))
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("RateLimit"), `"default";r=4;t=`) {
			t.Fatalf("admitted: %d %v", w.Code, w.Header())
		}
	})
}

// TestDenialAsNethttpmw: by default a denial is written directly, the
// response nethttpmw writes (status, every header, body), and Echo's
// HTTPErrorHandler is not called; so with WithProblemDetails and
// WithLegacyHeaders.
func TestDenialAsNethttpmw(t *testing.T) {
	for _, opts := range [][]nethttpmw.Option{nil, {nethttpmw.WithProblemDetails(), nethttpmw.WithLegacyHeaders()}} {
		synctest.Test(t, func(t *testing.T) {
			p := limiter.Policy{Rate: 1, Burst: 1}
			e := newEcho(New(newLimiter(t, p), opts...))
			e.HTTPErrorHandler = func(err error, c echo.Context) { t.Errorf("HTTPErrorHandler called with %v", err) }
			h := nethttpmw.New(newLimiter(t, p), opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			for i := range 3 {
				we, wn := serve(e, get("192.0.2.1:1")), httptest.NewRecorder()
				h.ServeHTTP(wn, get("192.0.2.1:1"))
				if i == 0 {
					continue // admitted
				}
				if we.Code != 429 || we.Code != wn.Code || !maps.EqualFunc(we.Header(), wn.Header(), slices.Equal) || we.Body.String() != wn.Body.String() {
					t.Fatalf("denial %d: echomw %d %v %q, nethttpmw %d %v %q", i, we.Code, we.Header(), we.Body, wn.Code, wn.Header(), wn.Body)
				}
			}
		})
	}
}

// TestDeniedThroughHTTPErrorHandler: with DenyWithHTTPError, the denial
// is an error for Echo's HTTPErrorHandler.
func TestDeniedThroughHTTPErrorHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEcho(FromGate(newGate(t, newLimiter(t, limiter.Policy{Rate: 1, Burst: 1})), Config{DeniedHandler: DenyWithHTTPError}))
		var got error
		e.HTTPErrorHandler = func(err error, c echo.Context) {
			got = err
			_ = c.NoContent(599)
		}
		serve(e, get("192.0.2.1:1"))
		if w := serve(e, get("192.0.2.1:1")); w.Code != 599 {
			t.Fatalf("status %d, error %v", w.Code, got)
		}
		var he *echo.HTTPError
		if !errors.As(got, &he) || he.Code != 429 || he.Message != "rate limit exceeded" {
			t.Fatalf("error %#v, want a 429 *echo.HTTPError", got)
		}
		// Each denial's error is its own: changing one changes no other.
		he.Code, he.Message = 500, "changed"
		serve(e, get("192.0.2.1:1"))
		if !errors.As(got, &he) || he.Code != 429 || he.Message != "rate limit exceeded" {
			t.Fatalf("after a change to an earlier denial's error: %#v", got)
		}
	})
}

func TestSkipper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, policy())
		e := newEcho(FromGate(newGate(t, l), Config{Skipper: func(c echo.Context) bool { return c.Request().URL.Path == "/healthz" }}))
		for range 3 * burst {
			if w := serve(e, httptest.NewRequest("GET", "/healthz", nil)); w.Code != 200 || w.Header().Get("RateLimit") != "" {
				t.Fatalf("skipped: %d %v", w.Code, w.Header())
			}
		}
		if s := l.Stats(); s.Allowed+s.Denied != 0 {
			t.Fatalf("skipped requests counted: %+v", s)
		}
	})
}

func TestKeyFuncAndCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := echo.New()
		e.Logger.SetOutput(io.Discard)
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc { // an "auth" middleware
			return func(c echo.Context) error { c.Set("user", c.Request().Header.Get("X-User")); return next(c) }
		})
		e.Use(FromGate(newGate(t, newLimiter(t, policy())), Config{
			KeyFunc: func(c echo.Context) (string, error) {
				u, _ := c.Get("user").(string)
				if u == "" {
					return "", errors.New("no user")
				}
				return "user|" + u, nil
			},
			Cost: func(c echo.Context) int { return len(c.QueryParam("n")) + 1 },
		}))
		e.GET("/", func(c echo.Context) error { return c.NoContent(204) })
		req := func(user, query string) int {
			r := httptest.NewRequest("GET", "/?"+query, nil)
			if user != "" {
				r.Header.Set("X-User", user)
			}
			return serve(e, r).Code
		}
		// alice: cost 3, cost 2 (5 tokens), then anything is denied; bob is separate.
		got := []int{req("alice", "n=xx"), req("alice", "n=x"), req("alice", ""), req("bob", ""), req("", "")}
		if want := []int{204, 204, 429, 204, 400}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	})
}

// TestErrors: limiter errors become a status-only *echo.HTTPError (no
// internal text, even in Echo's debug mode), or the custom handler's result.
func TestErrors(t *testing.T) {
	l := newLimiter(t, limiter.PerSecond(5))
	l.Close()
	e := newEcho(New(l))
	e.Debug = true
	w := serve(e, get("192.0.2.1:1"))
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || strings.Contains(w.Body.String(), "limiter") || strings.Contains(w.Body.String(), "closed") {
		t.Fatalf("closed limiter: %d %q %v", w.Code, w.Body, w.Header())
	}
	var got error
	e = newEcho(FromGate(newGate(t, l), Config{ErrorHandler: func(c echo.Context, err error) error { got = err; return c.NoContent(http.StatusTeapot) }}))
	if w := serve(e, get("192.0.2.1:1")); w.Code != http.StatusTeapot || !errors.Is(got, limiter.ErrClosed) {
		t.Fatalf("custom error handler: %d %v", w.Code, got)
	}
	e = newEcho(FromGate(newGate(t, newLimiter(t, limiter.PerSecond(5))), Config{Cost: func(echo.Context) int { return 99 }}))
	if w := serve(e, get("192.0.2.1:1")); w.Code != 500 || strings.Contains(w.Body.String(), "cost") {
		t.Fatalf("invalid cost: %d %q", w.Code, w.Body)
	}
}

func TestProblemDetails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, limiter.Policy{Rate: 1, Burst: 1})
		e := newEcho(New(l, nethttpmw.WithProblemDetails()))
		serve(e, get("192.0.2.1:1"))
		w := serve(e, get("192.0.2.1:1"))
		var p struct{ Status int }
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != 429 || p.Status != 429 ||
			w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("problem details: %d %q %v", w.Code, w.Body, w.Header())
		}
		l.Close()
		if w := serve(e, get("192.0.2.1:1")); w.Code != 503 || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("error as problem details: %d %v", w.Code, w.Header())
		}
	})
}

func TestDryRunAndDeniedHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		var paths []string
		e := newEcho(FromGate(newGate(t, newLimiter(t, policy()), nethttpmw.WithDryRun(func(*http.Request, limiter.Decision) { n++ }), nethttpmw.WithPolicyName("p")),
			Config{OnDryRun: func(c echo.Context, d limiter.Decision) { paths = append(paths, c.Path()) }}))
		for range 3 * burst {
			if w := serve(e, get("192.0.2.1:1")); w.Code != 200 || !strings.HasPrefix(w.Header().Get("RateLimit"), `"p";`) {
				t.Fatalf("dry run: %d %v", w.Code, w.Header())
			}
		}
		if n != 2*burst || len(paths) != 2*burst || paths[0] != "/*" {
			t.Fatalf("dry run counted %d, OnDryRun saw %q; want %d each, with the route", n, paths, 2*burst)
		}
		e = newEcho(FromGate(newGate(t, newLimiter(t, policy())), Config{DeniedHandler: func(c echo.Context, d limiter.Decision) error {
			return c.String(http.StatusTooManyRequests, fmt.Sprintf("slow down, %s", c.Response().Header().Get("Retry-After")))
		}}))
		for range burst {
			serve(e, get("192.0.2.1:1"))
		}
		if w := serve(e, get("192.0.2.1:1")); w.Code != 429 || !strings.HasPrefix(w.Body.String(), "slow down, ") || w.Body.String() == "slow down, " {
			t.Fatalf("custom denial: %d %q", w.Code, w.Body)
		}
	})
}

func TestMisuse(t *testing.T) {
	l := newLimiter(t, limiter.PerSecond(1))
	for name, opts := range map[string][]nethttpmw.Option{
		"nil option":     {nil},
		"bad prefix":     {nethttpmw.WithIPv6Prefix(0)},
		"bad header":     {nethttpmw.WithProxyHeader("X-Client-IP")},
		"bad name":       {nethttpmw.WithPolicyName("")},
		"bad trusted":    {nethttpmw.WithTrustedProxies(netip.Prefix{})},
		"nil after good": {nethttpmw.WithLegacyHeaders(), nil},
	} {
		if err := panicOf(func() { New(l, opts...) }); !errors.Is(err, nethttpmw.ErrInvalidOption) {
			t.Errorf("%s: New panicked with %v, want ErrInvalidOption", name, err)
		}
	}
	if err := panicOf(func() { New(nil) }); !errors.Is(err, nethttpmw.ErrInvalidOption) {
		t.Errorf("New(nil) panicked with %v, want ErrInvalidOption", err)
	}
	if err := panicOf(func() { FromGate(nil, Config{}) }); !errors.Is(err, nethttpmw.ErrInvalidOption) {
		t.Errorf("FromGate(nil) panicked with %v, want ErrInvalidOption", err)
	}
}

func panicOf(f func()) (err error) {
	defer func() { err, _ = recover().(error) }()
	f()
	return nil
}

// TestIPv6Grouping: addresses of one /64 share a bucket through Echo too.
func TestIPv6Grouping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEcho(New(newLimiter(t, policy())))
		ok := 0
		for i := range 20 {
			if serve(e, get(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1))).Code == 200 {
				ok++
			}
		}
		if ok != burst {
			t.Fatalf("admitted %d from one /64, want %d", ok, burst)
		}
	})
}

// TestEndToEnd runs Echo in a real server on loopback with a real client.
func TestEndToEnd(t *testing.T) {
	l := newLimiter(t, policy())
	srv := httptest.NewServer(newEcho(New(l)))
	defer srv.Close()
	codes := map[int]int{}
	for i := range 3 * burst {
		req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.Header.Get("RateLimit") == "" || (resp.StatusCode == 429) != (resp.Header.Get("Retry-After") != "") {
			t.Fatalf("response %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	if codes[200] != burst || codes[429] != 2*burst {
		t.Fatalf("statuses %v", codes)
	}
}
