// Package echomw is rate-limiting middleware for Echo
// (github.com/labstack/echo/v4), a thin adapter over package nethttpmw's
// Gate: the same options, client identity (RemoteAddr by default,
// forwarding headers only from trusted proxies, IPv6 grouped by /64),
// RateLimit header fields and defaults.
//
//	e.Use(echomw.New(l, nethttpmw.WithTrustedProxies(lb)))
//
// New takes nethttpmw's options as they are; what only Echo has, hooks that
// take an echo.Context, is a Config, whose zero value is the default:
//
//	g, err := nethttpmw.NewGate(l, nethttpmw.WithPolicyName("api"))
//	if err != nil { … }
//	e.Use(echomw.FromGate(g, echomw.Config{Skipper: healthz}))
//
// The two kinds do not share one option type because nethttpmw cannot
// know Echo's types, and echomw cannot add to nethttpmw's configuration.
//
// It never uses echo.Context.RealIP, which trusts X-Forwarded-For from any
// peer unless an IPExtractor is configured. It follows Echo's conventions:
// a Skipper, a Config of hooks, headers set on the response. A denial gets
// the same 429 as from nethttpmw, written directly: returned as an error,
// it would be rendered as JSON by Echo's HTTPErrorHandler, at almost four
// times the cost, on the requests a flood sends (see the README's
// Overhead section). To have the HTTPErrorHandler render denials, set
// Config.DeniedHandler to DenyWithHTTPError.
package echomw

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// Config holds the Echo-specific hooks. Each nil field has the default
// its comment names; the zero Config is the default middleware.
type Config struct {
	// Skipper exempts the requests for which it returns true, for example
	// health checks: they are not counted and get no headers. nil:
	// middleware.DefaultSkipper (none), and nethttpmw.WithSkip's function
	// if the Gate has one.
	Skipper middleware.Skipper

	// KeyFunc returns the limiter key. It sees the echo.Context, so it can
	// use what earlier middleware stored (c.Get("user")). An error goes to
	// the error handler wrapping nethttpmw.ErrUnidentified (default: 400).
	// nil: the Gate's key (nethttpmw.WithKeyFunc, or its Identity; never
	// c.RealIP()).
	KeyFunc func(c echo.Context) (string, error)

	// Cost returns the request's cost in tokens; see nethttpmw.WithCost.
	// nil: the Gate's cost (nethttpmw.WithCost, or 1).
	Cost func(c echo.Context) int

	// DeniedHandler responds to a denied request; its return value is the
	// middleware's. When it runs, the RateLimit fields and Retry-After are
	// set on the response. nil: the Gate's response, written directly and
	// nil returned: nethttpmw.WithDeniedHandler's, or the Gate's default
	// 429 (a short text body, or problem details with WithProblemDetails),
	// as nethttpmw's middleware writes it. DenyWithHTTPError returns the
	// denial to Echo's HTTPErrorHandler instead.
	DeniedHandler func(c echo.Context, d limiter.Decision) error

	// ErrorHandler responds to a request for which no decision could be
	// made (limiter error, key function error); see nethttpmw.ErrorStatus.
	// nil: the Gate's own response if it has one (nethttpmw.WithErrorHandler
	// or WithProblemDetails); otherwise err is logged with c.Logger() and an
	// *echo.HTTPError with the status of nethttpmw.ErrorStatus and its
	// status text, never err's text, is returned. The request is never let
	// through.
	ErrorHandler func(c echo.Context, err error) error

	// OnDryRun is called with each request that a Gate in dry-run mode
	// (nethttpmw.WithDryRun) would have denied, after WithDryRun's own
	// function. nil: nothing is called.
	OnDryRun func(c echo.Context, d limiter.Decision)
}

// New returns Echo middleware that rate-limits each client with l, with
// nethttpmw's options. Like Echo's own middleware constructors, it panics
// if l is nil or an option is invalid (an error wrapping
// nethttpmw.ErrInvalidOption); to get the error instead, or to set a
// Config, build the Gate with nethttpmw.NewGate and use FromGate.
func New(l *limiter.Limiter, opts ...nethttpmw.Option) echo.MiddlewareFunc {
	g, err := nethttpmw.NewGate(l, opts...)
	if err != nil {
		panic(err)
	}
	return FromGate(g, Config{})
}

// FromGate returns Echo middleware that rate-limits each client through g
// (which sets the key, cost, headers and responses), with the Echo hooks of
// c. It panics if g is nil.
func FromGate(g *nethttpmw.Gate, c Config) echo.MiddlewareFunc {
	if g == nil {
		panic(fmt.Errorf("%w: nil *nethttpmw.Gate", nethttpmw.ErrInvalidOption))
	}
	if c.Skipper == nil {
		c.Skipper = middleware.DefaultSkipper
	}
	a := &adapter{g: g, c: c}
	_, a.writesError = g.Responds()
	return a.middleware
}

// DenyWithHTTPError is a Config.DeniedHandler for applications whose
// HTTPErrorHandler renders every error response, denials included: it
// returns a new 429 *echo.HTTPError with the message "rate limit
// exceeded" (which Echo's default handler writes as JSON). The RateLimit
// fields and Retry-After are already set on the response.
//
//	e.Use(echomw.FromGate(g, echomw.Config{DeniedHandler: echomw.DenyWithHTTPError}))
func DenyWithHTTPError(echo.Context, limiter.Decision) error {
	// A new error each time: an *echo.HTTPError is mutable (SetInternal),
	// so a shared one would be every request's. A literal is one
	// allocation; NewHTTPError's variadic message would be another.
	return &echo.HTTPError{Code: http.StatusTooManyRequests, Message: "rate limit exceeded"}
}

type adapter struct {
	g           *nethttpmw.Gate
	c           Config
	writesError bool
}

func (a *adapter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if a.c.Skipper(c) || a.g.Skip(r) {
			return next(c)
		}
		d, pass, err := a.decide(c, r)
		switch {
		case err != nil: // no decision was made
			return a.handleError(c, err)
		case !pass:
			return a.denied(c, d)
		}
		if !d.Allowed && a.c.OnDryRun != nil { // dry run: a denial let through
			a.c.OnDryRun(c, d)
		}
		return next(c)
	}
}

// decide decides r, and with the Gate's denied response (no
// DeniedHandler), answers it if it is blocked (nethttpmw.Gate.Guard).
// pass reports whether the request goes on.
func (a *adapter) decide(c echo.Context, r *http.Request) (d limiter.Decision, pass bool, err error) {
	var key string
	if a.c.KeyFunc != nil {
		key, err = a.c.KeyFunc(c)
		if err != nil {
			err = fmt.Errorf("%w: %w", nethttpmw.ErrUnidentified, err)
		}
	} else {
		key, err = a.g.Key(r)
	}
	if err != nil {
		return limiter.Decision{}, false, err
	}
	var cost int
	if a.c.Cost != nil {
		cost = a.c.Cost(c)
	} else {
		cost = a.g.Cost(r)
	}
	if a.c.DeniedHandler == nil {
		return a.g.Guard(c.Response(), r, key, cost)
	}
	d, block, err := a.g.Check(r, c.Response().Header(), key, cost)
	return d, !block, err
}

// denied is the middleware's return value for a blocked request: the
// DeniedHandler's, or nil when decide has written the Gate's response.
func (a *adapter) denied(c echo.Context, d limiter.Decision) error {
	if a.c.DeniedHandler != nil {
		return a.c.DeniedHandler(c, d)
	}
	return nil
}

func (a *adapter) handleError(c echo.Context, err error) error {
	switch {
	case a.c.ErrorHandler != nil:
		return a.c.ErrorHandler(c, err)
	case a.writesError:
		a.g.Fail(c.Response(), c.Request(), err)
		return nil
	}
	status := a.g.ErrorHeaders(c.Response().Header(), err)
	// err goes to the server's log, never to the client: an HTTPError's
	// Internal would be shown by Echo's default error handler in debug mode.
	c.Logger().Error(err)
	return echo.NewHTTPError(status, http.StatusText(status))
}
