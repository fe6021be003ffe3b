// Package echomw is rate-limiting middleware for Echo
// (github.com/labstack/echo/v4), a thin adapter over package nethttpmw: the
// same client identity (RemoteAddr by default, forwarding headers only from
// trusted proxies, IPv6 grouped by /64), the same RateLimit header fields and
// the same defaults. See nethttpmw for the details of each option.
//
// It never uses echo.Context.RealIP, which trusts X-Forwarded-For from any
// peer unless an IPExtractor is configured. It follows Echo's conventions:
// a Skipper, headers set on the response, and a denial returned as a 429
// *echo.HTTPError for the Echo's HTTPErrorHandler.
package echomw

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// An Option configures the middleware.
type Option func(*config) error

type config struct {
	net     []nethttpmw.Option
	skipper middleware.Skipper
	keyFunc func(echo.Context) (string, error)
	cost    func(echo.Context) int
	denied  func(echo.Context, limiter.Decision) error
	onError func(echo.Context, error) error
	problem bool
}

// ErrDenied is the error the default denied handler returns: 429 Too Many
// Requests, rendered by Echo's HTTPErrorHandler. Like echo.ErrNotFound it
// is one shared value: compare with ==, or check its Code.
var ErrDenied = echo.NewHTTPError(http.StatusTooManyRequests, "rate limit exceeded")

// New returns Echo middleware that rate-limits each client with l. It
// panics if l is nil or an option is invalid (like Echo's own middleware
// constructors); use NewWithError to get the error instead.
func New(l *limiter.Limiter, opts ...Option) echo.MiddlewareFunc {
	m, err := NewWithError(l, opts...)
	if err != nil {
		panic(err)
	}
	return m
}

// NewWithError is New returning an error (wrapping
// nethttpmw.ErrInvalidOption) instead of panicking.
func NewWithError(l *limiter.Limiter, opts ...Option) (echo.MiddlewareFunc, error) {
	c := config{skipper: middleware.DefaultSkipper}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", nethttpmw.ErrInvalidOption)
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	g, err := nethttpmw.NewGate(l, c.net...)
	if err != nil {
		return nil, err
	}
	a := &adapter{g: g, l: l, c: c}
	return a.middleware, nil
}

type adapter struct {
	g *nethttpmw.Gate
	l *limiter.Limiter
	c config
}

func (a *adapter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.c.skipper(c) {
			return next(c)
		}
		r := c.Request()
		d, err := a.decide(c, r)
		if err != nil { // no decision was made
			return a.handleError(c, err)
		}
		if a.g.Apply(r, c.Response().Header(), d) {
			return a.deny(c, d)
		}
		return next(c)
	}
}

func (a *adapter) decide(c echo.Context, r *http.Request) (limiter.Decision, error) {
	var key string
	var err error
	if a.c.keyFunc != nil {
		key, err = a.c.keyFunc(c)
		if err != nil {
			err = fmt.Errorf("%w: %w", nethttpmw.ErrUnidentified, err)
		}
	} else {
		key, err = a.g.Key(r)
	}
	if err != nil {
		return limiter.Decision{}, err
	}
	cost := 1
	if a.c.cost != nil {
		cost = a.c.cost(c)
	}
	return a.l.AllowN(r.Context(), key, cost)
}

func (a *adapter) deny(c echo.Context, d limiter.Decision) error {
	switch {
	case a.c.denied != nil:
		return a.c.denied(c, d)
	case a.c.problem:
		a.g.WriteDenied(c.Response())
		return nil
	}
	return ErrDenied
}

func (a *adapter) handleError(c echo.Context, err error) error {
	if a.c.onError != nil {
		return a.c.onError(c, err)
	}
	if a.c.problem {
		a.g.WriteError(c.Response(), err)
		return nil
	}
	status := a.g.ErrorHeaders(c.Response().Header(), err)
	// err goes to the server's log, never to the client: an HTTPError's
	// Internal would be shown by Echo's default error handler in debug mode.
	c.Logger().Error(err)
	return echo.NewHTTPError(status, http.StatusText(status))
}

// WithSkipper exempts the requests for which s returns true (default
// middleware.DefaultSkipper, none), for example health checks. A skipped
// request is not counted and gets no headers.
func WithSkipper(s middleware.Skipper) Option {
	return func(c *config) error {
		if s == nil {
			return fmt.Errorf("%w: WithSkipper(nil)", nethttpmw.ErrInvalidOption)
		}
		c.skipper = s
		return nil
	}
}

// WithKeyFunc replaces the client address as the limiter key (default:
// nethttpmw's Identity, never c.RealIP()). f sees the echo.Context, so it
// can use what earlier middleware stored (c.Get("user")). An error goes to
// the error handler wrapping nethttpmw.ErrUnidentified (default: 400).
func WithKeyFunc(f func(c echo.Context) (string, error)) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithKeyFunc(nil)", nethttpmw.ErrInvalidOption)
		}
		c.keyFunc = f
		return nil
	}
}

// WithCost sets each request's cost in tokens (default 1); see
// nethttpmw.WithCost.
func WithCost(f func(c echo.Context) int) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithCost(nil)", nethttpmw.ErrInvalidOption)
		}
		c.cost = f
		return nil
	}
}

// WithDeniedHandler replaces the default denial (returning ErrDenied, a
// 429 *echo.HTTPError). When f runs, the RateLimit fields and Retry-After
// are set on the response; its return value is the middleware's.
func WithDeniedHandler(f func(c echo.Context, d limiter.Decision) error) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithDeniedHandler(nil)", nethttpmw.ErrInvalidOption)
		}
		c.denied = f
		return nil
	}
}

// WithErrorHandler replaces the default handling of a request for which no
// decision could be made (limiter error, key function error). The default
// logs err with c.Logger() and returns an *echo.HTTPError with the status
// of nethttpmw.ErrorStatus and its status text, never err's text; the
// request is not let through.
func WithErrorHandler(f func(c echo.Context, err error) error) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithErrorHandler(nil)", nethttpmw.ErrInvalidOption)
		}
		c.onError = f
		return nil
	}
}

// WithTrustedProxies is nethttpmw.WithTrustedProxies (default: none).
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return with(nethttpmw.WithTrustedProxies(prefixes...))
}

// WithProxyHeader is nethttpmw.WithProxyHeader (default X-Forwarded-For).
func WithProxyHeader(h nethttpmw.ProxyHeader) Option {
	return with(nethttpmw.WithProxyHeader(h))
}

// WithIPv6Prefix is nethttpmw.WithIPv6Prefix (default 64).
func WithIPv6Prefix(bits int) Option { return with(nethttpmw.WithIPv6Prefix(bits)) }

// WithDryRun is nethttpmw.WithDryRun (default off): never block, report
// would-be denials to f.
func WithDryRun(f func(r *http.Request, d limiter.Decision)) Option {
	return with(nethttpmw.WithDryRun(f))
}

// WithPolicyName is nethttpmw.WithPolicyName (default "default").
func WithPolicyName(name string) Option { return with(nethttpmw.WithPolicyName(name)) }

// WithLegacyHeaders is nethttpmw.WithLegacyHeaders (default off).
func WithLegacyHeaders() Option { return with(nethttpmw.WithLegacyHeaders()) }

// WithProblemDetails makes the default denial and error responses RFC 9457
// application/problem+json documents, written directly to the response
// (Echo's HTTPErrorHandler would send them as application/json); the
// middleware then returns nil. Default off.
func WithProblemDetails() Option {
	return func(c *config) error {
		c.problem = true
		c.net = append(c.net, nethttpmw.WithProblemDetails())
		return nil
	}
}

func with(o nethttpmw.Option) Option {
	return func(c *config) error {
		c.net = append(c.net, o)
		return nil
	}
}
