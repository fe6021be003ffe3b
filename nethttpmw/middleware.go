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
// called once while the server is set up; use NewGate to get the error
// instead.
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
		d, err := g.decide(r)
		if err != nil { // no decision was made
			g.handleError(w, r, err)
			return
		}
		if g.Apply(r, w.Header(), d) {
			g.deny(w, r, d)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gate) decide(r *http.Request) (limiter.Decision, error) {
	key, err := g.Key(r)
	if err != nil {
		return limiter.Decision{}, err
	}
	return g.l.AllowN(r.Context(), key, g.Cost(r))
}

func (g *Gate) deny(w http.ResponseWriter, r *http.Request, d limiter.Decision) {
	if g.cfg.denied != nil {
		g.cfg.denied(w, r, d)
		return
	}
	g.WriteDenied(w)
}

func (g *Gate) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if g.cfg.onError != nil {
		g.cfg.onError(w, r, err)
		return
	}
	g.WriteError(w, err)
}
