package nethttpmw

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/floodgate-go/floodgate/limiter"
)

// A Gate is the middleware without the net/http plumbing: the client key,
// the cost, the response headers and the default responses, for adapters
// (package echomw uses it) and gateways that are not net/http middleware.
// A Gate is safe for concurrent use.
//
// One request through a Gate is:
//
//	key, err := g.Key(r)                           // error: g.Fail(w, r, err)
//	_, pass, err := g.Guard(w, r, key, g.Cost(r))  // a blocked request is answered (429)
//	if err != nil { g.Fail(w, r, err) } else if pass { next.ServeHTTP(w, r) }
//
// Guard is Check, which decides and sets the fields on a header, then Deny
// for a blocked request. Check charges the Gate's limiter, or the limits
// WithLimits chooses. A gateway that decides by itself (limiter.AllowN)
// sets the fields with Apply instead.
type Gate struct {
	l     *limiter.Limiter
	cfg   config
	id    *Identity
	f     atomic.Pointer[fields] // the values of the policy last seen; see fields
	named namedFields            // the values of WithLimits's limits

	deniedType string // default 429 response
	deniedBody []byte
	problem    bool
}

// NewGate returns a Gate that charges l. The error wraps ErrInvalidOption
// if l is nil or an option is invalid.
func NewGate(l *limiter.Limiter, opts ...Option) (*Gate, error) {
	if l == nil {
		return nil, fmt.Errorf("%w: nil *limiter.Limiter", ErrInvalidOption)
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	g := &Gate{l: l, cfg: c, id: newIdentity(&c), problem: c.problem}
	g.f.Store(newFields(l.Policy(), c.name))
	if c.problem {
		g.deniedType = "application/problem+json"
		g.deniedBody = []byte(problemJSON(http.StatusTooManyRequests, "The rate limit of policy "+strconvQuote(c.name)+" is exhausted; retry after the time in the Retry-After header."))
	} else {
		g.deniedType = "text/plain; charset=utf-8"
		g.deniedBody = []byte("rate limit exceeded\n")
	}
	return g, nil
}

// Identity returns the Identity the Gate uses for its default key.
func (g *Gate) Identity() *Identity { return g.id }

// Limiter returns the limiter the Gate charges.
func (g *Gate) Limiter() *limiter.Limiter { return g.l }

// Skip reports whether r is exempt (see WithSkip).
func (g *Gate) Skip(r *http.Request) bool { return g.cfg.skip != nil && g.cfg.skip(r) }

// Key returns r's limiter key: the key function's (see WithKeyFunc), or the
// Identity's. An error wraps ErrUnidentified.
func (g *Gate) Key(r *http.Request) (string, error) {
	if g.cfg.keyFunc == nil {
		return g.id.Key(r), nil
	}
	k, err := g.cfg.keyFunc(r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnidentified, err)
	}
	return k, nil
}

// Cost returns r's cost in tokens (see WithCost).
func (g *Gate) Cost(r *http.Request) int {
	if g.cfg.cost == nil {
		return 1
	}
	return g.cfg.cost(r)
}

// Apply sets the RateLimit fields for d on h and reports whether the request
// must be rejected. A denial blocks, and Retry-After is set, unless the Gate
// is in dry-run mode: then the denial is reported to the dry-run function
// and the request goes on.
func (g *Gate) Apply(r *http.Request, h http.Header, d limiter.Decision) (block bool) {
	return g.apply(r, h, d, "")
}

// apply is Apply, which also sets Content-Type: ct on a blocked request if
// ct is not empty.
func (g *Gate) apply(r *http.Request, h http.Header, d limiter.Decision, ct string) (block bool) {
	block = !d.Allowed && !g.cfg.dryRun
	g.fields().set(h, d, block, g.cfg.legacy, ct)
	g.reportDryRun(r, d)
	return block
}

// reportDryRun reports a denial the Gate let through in dry-run mode.
func (g *Gate) reportDryRun(r *http.Request, d limiter.Decision) {
	if !d.Allowed && g.cfg.dryRun && g.cfg.onDryRun != nil {
		g.cfg.onDryRun(r, d)
	}
}

// fields returns the values of the limiter's current policy, which
// SetPolicy (or Plans.Update) may have changed since the last request: one
// atomic load and a comparison, unless it has.
func (g *Gate) fields() *fields {
	p, f := g.l.Policy(), g.f.Load()
	for f.p != p {
		nf := newFields(p, g.cfg.name)
		if g.f.CompareAndSwap(f, nf) {
			return nf
		}
		f = g.f.Load()
	}
	return f
}

// WriteDenied writes the default response to a denied request: 429 Too
// Many Requests with a short body (plain text, or problem details with
// WithProblemDetails). Call it after Apply, which set the headers.
func (g *Gate) WriteDenied(w http.ResponseWriter) {
	setContentType(w.Header(), g.deniedType)
	g.writeDeniedBody(w)
}

func (g *Gate) writeDeniedBody(w http.ResponseWriter) {
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(g.deniedBody)
}

// WriteError writes the default response to err: ErrorStatus(err) with its
// status text (or problem details), and the headers of ErrorHeaders. It
// never writes err's text.
func (g *Gate) WriteError(w http.ResponseWriter, err error) {
	status := g.ErrorHeaders(w.Header(), err)
	if g.problem {
		setContentType(w.Header(), "application/problem+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(problemJSON(status, "")))
		return
	}
	setContentType(w.Header(), "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
}

// ErrorHeaders sets the headers of the default response to err (Retry-After:
// 1 on a 503) and returns its status, ErrorStatus(err).
func (g *Gate) ErrorHeaders(h http.Header, err error) (status int) {
	status = ErrorStatus(err)
	if status == http.StatusServiceUnavailable {
		v := newValues(1)
		v[0] = "1"
		h[keyRetryAfter] = v
	}
	return status
}

// ErrorStatus is the status of the default response when no decision could
// be made because of err:
//
//   - 400 Bad Request if the key function could not identify the client
//     (err wraps ErrUnidentified);
//   - 500 Internal Server Error for a cost outside [1, Burst]
//     (limiter.ErrInvalidCost), a configuration error;
//   - 503 Service Unavailable for anything else: the limiter is closed, or
//     its remote tier failed and it is configured to fail closed. The
//     request is rejected, never let through unlimited.
func ErrorStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnidentified):
		return http.StatusBadRequest
	case errors.Is(err, limiter.ErrInvalidCost):
		return http.StatusInternalServerError
	}
	return http.StatusServiceUnavailable
}

// setContentType sets Content-Type to ct and X-Content-Type-Options to
// nosniff, with values of this response's own (see newValues).
func setContentType(h http.Header, ct string) {
	v := newValues(2)
	v[0], v[1] = ct, "nosniff"
	h[keyContentType], h[keyNosniff] = v[0:1:1], v[1:2:2]
}

// problemJSON is an RFC 9457 problem details document for status.
func problemJSON(status int, detail string) string {
	p := struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{"about:blank", http.StatusText(status), status, detail}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // unreachable: a struct of strings and an int always marshals
	}
	return string(b)
}

func strconvQuote(s string) string { return string(appendSFString(nil, s)) }
