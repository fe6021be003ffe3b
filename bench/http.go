package bench

import (
	"net"
	"net/http"
	"time"

	"github.com/go-chi/httprate"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/sethvargo/go-limiter/httplimit"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulimiter "github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/middleware/stdlib"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/echomw"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// An HTTPImpl is one HTTP middleware under test, or a bare handler it is
// measured against. Every middleware wraps the bare handler of its
// framework, configured from the same Config as the limiter adapters, with
// its library's default client identity and response headers.
type HTTPImpl struct {
	// Name is the short name used in benchmark names and tables.
	Name string
	// Library is the module path, pinned version and entry point.
	Library string
	// Bare names the bare handler this middleware wraps; empty for a bare
	// handler itself.
	Bare string
	// Identity says how the middleware keys a client by default.
	Identity string
	// Notes lists every other deviation from the shared Config.
	Notes string
	// New builds the handler for c, and a function that releases it.
	New func(c Config) (http.Handler, func(), error)
}

// Names of the bare handlers.
const (
	BareNetHTTP = "bare-nethttp"
	BareEcho    = "bare-echo"
)

// HTTPImpls returns the bare handlers and every middleware, floodgate's
// first.
func HTTPImpls() []HTTPImpl {
	return []HTTPImpl{
		{Name: BareNetHTTP, Library: "net/http: an http.HandlerFunc that writes 200", New: bareNetHTTP},
		{Name: BareEcho, Library: "github.com/labstack/echo/v4 v4.16.0: an Echo with one route that writes 200", New: bareEcho},
		{
			Name: "nethttpmw", Library: "floodgate nethttpmw.New", Bare: BareNetHTTP,
			Identity: "RemoteAddr; forwarding headers only from configured trusted proxies (none by default)",
			Notes:    "RateLimit-Policy and RateLimit headers on every response, Retry-After on a 429",
			New:      newNetHTTPMW,
		},
		{
			Name: "nethttpmw-2limits", Library: "floodgate nethttpmw.New with WithLimits choosing two limits per request", Bare: BareNetHTTP,
			Identity: "as nethttpmw",
			Notes:    "the client charged on two limiters of the policy at once (per IP and per route), all or nothing; a RateLimit item per limit",
			New:      newNetHTTPMW2,
		},
		{
			Name: "echomw", Library: "floodgate echomw.New", Bare: BareEcho,
			Identity: "RemoteAddr, as nethttpmw (never echo.Context.RealIP)",
			Notes:    "as nethttpmw (a denial is written directly, as nethttpmw writes it)",
			New:      newEchoMW,
		},
		{
			Name: "echo", Library: "github.com/labstack/echo/v4 v4.16.0, middleware.RateLimiter with RateLimiterMemoryStore", Bare: BareEcho,
			Identity: "echo.Context.RealIP: X-Forwarded-For, then X-Real-IP, from any peer (no IPExtractor is set by default)",
			Notes:    "no rate-limit headers; the memory store's defaults (ExpiresIn 3 min)",
			New:      newEchoRL,
		},
		{
			Name: "httprate", Library: "github.com/go-chi/httprate v0.16.1, LimitBy with LimitByIP's key", Bare: BareNetHTTP,
			Identity: "no default key: LimitBy requires a key function; given LimitByIP's (RemoteAddr, IPv6 by /64), written out because LimitByIP and KeyByIP are deprecated",
			Notes:    "X-RateLimit-Limit, -Remaining, -Reset on every response; sliding window counter of Burst per Burst/Rate seconds",
			New:      newHTTPRateMW,
		},
		{
			Name: "sethvargo", Library: "github.com/sethvargo/go-limiter v1.1.0, httplimit.NewMiddleware over memorystore", Bare: BareNetHTTP,
			Identity: "no default key: NewMiddleware requires a KeyFunc; given IPKeyFunc() with no headers (RemoteAddr)",
			Notes:    "X-RateLimit-Limit, -Remaining, -Reset on every response; fixed window of Burst per Burst/Rate seconds",
			New:      newSethvargoMW,
		},
		{
			Name: "throttled", Library: "github.com/throttled/throttled/v2 v2.15.0, HTTPRateLimiterCtx over memstore", Bare: BareNetHTTP,
			Identity: "no default key: VaryBy must be set; given VaryBy{RemoteAddr: true} (the address without its port)",
			Notes:    "X-RateLimit-Limit, -Remaining, -Reset on every response; MaxBurst = Burst-1; LRU of 2^20 keys",
			New:      newThrottledMW,
		},
		{
			Name: "ulule", Library: "github.com/ulule/limiter/v3 v3.11.2, drivers/middleware/stdlib over drivers/store/memory", Bare: BareNetHTTP,
			Identity: "DefaultKeyGetter: RemoteAddr (TrustForwardHeader is false by default)",
			Notes:    "X-RateLimit-Limit, -Remaining, -Reset on every response; fixed window of Burst per Burst/Rate seconds",
			New:      newUluleMW,
		},
	}
}

// LookupHTTP returns the HTTP implementation called name.
func LookupHTTP(name string) (HTTPImpl, bool) {
	for _, im := range HTTPImpls() {
		if im.Name == name {
			return im, true
		}
	}
	return HTTPImpl{}, false
}

func ok200(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func bareNetHTTP(Config) (http.Handler, func(), error) {
	return http.HandlerFunc(ok200), func() {}, nil
}

// HTTPPath is the path of every benchmark request.
const HTTPPath = "/hello"

func echoWith(m ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.Use(m...)
	e.GET(HTTPPath, func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	return e
}

func bareEcho(Config) (http.Handler, func(), error) { return echoWith(), func() {}, nil }

func floodgatePolicy(c Config) limiter.Policy {
	return limiter.Policy{Rate: rate.Limit(c.Rate), Burst: c.Burst}
}

func newNetHTTPMW(c Config) (http.Handler, func(), error) {
	l, err := limiter.New(floodgatePolicy(c))
	if err != nil {
		return nil, nil, err
	}
	return nethttpmw.New(l)(http.HandlerFunc(ok200)), func() { l.Close() }, nil
}

// newNetHTTPMW2 is the per-request path: WithLimits chooses two limits for
// every request, the client on a per-IP limiter and on a per-route one.
func newNetHTTPMW2(c Config) (http.Handler, func(), error) {
	perIP, err := limiter.New(floodgatePolicy(c))
	if err != nil {
		return nil, nil, err
	}
	perRoute, err := limiter.New(floodgatePolicy(c))
	if err != nil {
		perIP.Close()
		return nil, nil, err
	}
	choose := func(_ *http.Request, client string) []limiter.Limit {
		return []limiter.Limit{{Name: "per-ip", Limiter: perIP, Key: client}, {Name: "per-route", Limiter: perRoute, Key: client}}
	}
	h := nethttpmw.New(perIP, nethttpmw.WithLimits(choose))(http.HandlerFunc(ok200))
	return h, func() { perIP.Close(); perRoute.Close() }, nil
}

func newEchoMW(c Config) (http.Handler, func(), error) {
	l, err := limiter.New(floodgatePolicy(c))
	if err != nil {
		return nil, nil, err
	}
	g, err := nethttpmw.NewGate(l)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return echoWith(echomw.FromGate(g, echomw.Config{})), func() { l.Close() }, nil
}

func newEchoRL(c Config) (http.Handler, func(), error) {
	s := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(c.Rate), Burst: c.Burst,
	})
	return echoWith(middleware.RateLimiter(s)), func() {}, nil
}

// httprateKey is httprate.KeyByIP written out (it is deprecated in
// v0.16.1): the RemoteAddr's host, canonicalised (IPv6 by /64).
func httprateKey(r *http.Request) (string, error) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(ip), nil
}

func newHTTPRateMW(c Config) (http.Handler, func(), error) {
	return httprate.LimitBy(c.Burst, c.Window(), httprateKey)(http.HandlerFunc(ok200)), func() {}, nil
}

func newSethvargoMW(c Config) (http.Handler, func(), error) {
	s, err := memorystore.New(&memorystore.Config{Tokens: uint64(c.Burst), Interval: c.Window()})
	if err != nil {
		return nil, nil, err
	}
	m, err := httplimit.NewMiddleware(s, httplimit.IPKeyFunc())
	if err != nil {
		return nil, nil, err
	}
	l := sethvargoLimiter{s}
	return m.Handle(http.HandlerFunc(ok200)), l.Close, nil
}

func newThrottledMW(c Config) (http.Handler, func(), error) {
	st, err := memstore.NewCtx(throttledDefaultKeys)
	if err != nil {
		return nil, nil, err
	}
	period := time.Duration(float64(time.Second) / c.Rate)
	l, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{
		MaxRate:  throttled.PerDuration(1, period),
		MaxBurst: c.Burst - 1,
	})
	if err != nil {
		return nil, nil, err
	}
	m := &throttled.HTTPRateLimiterCtx{RateLimiter: l, VaryBy: &throttled.VaryBy{RemoteAddr: true}}
	return m.RateLimit(http.HandlerFunc(ok200)), func() {}, nil
}

func newUluleMW(c Config) (http.Handler, func(), error) {
	store := ulmemory.NewStoreWithOptions(ulimiter.StoreOptions{
		Prefix:          ulimiter.DefaultPrefix,
		CleanUpInterval: ulimiter.DefaultCleanUpInterval,
	})
	l := ulimiter.New(store, ulimiter.Rate{Period: c.Window(), Limit: int64(c.Burst)})
	return stdlib.NewMiddleware(l).Handler(http.HandlerFunc(ok200)), func() {}, nil
}

// isFloodgateHTTP reports whether im is one of floodgate's middlewares.
func isFloodgateHTTP(im HTTPImpl) bool {
	return im.Name == "nethttpmw" || im.Name == "nethttpmw-2limits" || im.Name == "echomw"
}
