package nethttpmw

import (
	"net/http"

	"github.com/floodgate-go/floodgate/limiter"
)

// New returns middleware that rate-limits each client with l. Every
// response it lets through or denies carries the RateLimit-Policy and
// RateLimit fields; a denied request gets 429 Too Many Requests with
// Retry-After, and the next handler is not called.
//
// New panics if l is nil or an option is invalid, as it is meant to be
// called once while the server is set up. To get the error instead, build
// the Gate with NewGate and wrap with its Handler method: in both packages,
// New is the middleware that panics on misuse, and a constructor that
// returns an error is named for what it returns (NewGate, NewIdentity).
func New(l *limiter.Limiter, opts ...Option) func(http.Handler) http.Handler {
	g, err := NewGate(l, opts...)
	if err != nil {
		panic(err)
	}
	return g.Handler
}

// Handler returns next wrapped by the Gate, as New does.
func (g *Gate) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		key, err := g.Key(r)
		if err != nil {
			g.Fail(w, r, err)
			return
		}
		switch _, pass, err := g.Guard(w, r, key, g.Cost(r)); {
		case err != nil: // no decision was made
			g.Fail(w, r, err)
		case pass:
			next.ServeHTTP(w, r)
		}
	})
}

// Guard decides r for the client key at cost as Check does, setting the
// fields on w's header, and answers a blocked request as Deny does. pass
// reports whether the request may go on to the next handler; if it is
// false and err is nil, the denial has been written. An error means that
// no decision was made and nothing was written (answer with Fail). d is
// the decision, for a hook of the caller's (pass with d denied is a
// dry-run denial).
//
// The middleware is Key, then Guard; an adapter (echomw) calls them with
// its framework's key and cost. Guard is Check then Deny, except that the
// default 429's Content-Type is set with the other fields, in their
// allocation.
func (g *Gate) Guard(w http.ResponseWriter, r *http.Request, key string, cost int) (d limiter.Decision, pass bool, err error) {
	ct := ""
	if g.cfg.denied == nil {
		ct = g.deniedType
	}
	d, block, err := g.check(r, w.Header(), key, cost, ct)
	switch {
	case err != nil || !block:
		return d, err == nil, err
	case g.cfg.denied == nil:
		g.writeDeniedBody(w)
	default:
		g.cfg.denied(w, r, d)
	}
	return d, false, nil
}

// Deny responds to a denied request as the Gate is configured to: with
// WithDeniedHandler's function, or WriteDenied. Call it after Apply.
func (g *Gate) Deny(w http.ResponseWriter, r *http.Request, d limiter.Decision) {
	if g.cfg.denied != nil {
		g.cfg.denied(w, r, d)
		return
	}
	g.WriteDenied(w)
}

// Fail responds to a request for which no decision could be made as the
// Gate is configured to: with WithErrorHandler's function, or WriteError.
func (g *Gate) Fail(w http.ResponseWriter, r *http.Request, err error) {
	if g.cfg.onError != nil {
		g.cfg.onError(w, r, err)
		return
	}
	g.WriteError(w, err)
}

// Responds reports whether the Gate has a response of its own to a denied
// request (WithDeniedHandler or WithProblemDetails) and to one for which
// no decision could be made (WithErrorHandler or WithProblemDetails). Where
// it has none, an adapter may follow its framework's convention instead of
// Deny or Fail (echomw returns an *echo.HTTPError for a failure; it answers
// denials through Guard either way, unless its Config has a DeniedHandler).
func (g *Gate) Responds() (denied, failed bool) {
	return g.cfg.denied != nil || g.problem, g.cfg.onError != nil || g.problem
}
