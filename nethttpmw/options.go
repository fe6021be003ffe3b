package nethttpmw

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/floodgate-go/floodgate/limiter"
)

// ErrInvalidOption is wrapped by every error NewGate and NewIdentity return
// for a bad Option; New panics with it.
var ErrInvalidOption = errors.New("nethttpmw: invalid option")

// An Option configures the middleware, a Gate or an Identity.
type Option func(*config) error

// A ProxyHeader names the forwarding header that trusted proxies write.
type ProxyHeader string

// The forwarding headers the Identity understands.
const (
	// HeaderXForwardedFor is X-Forwarded-For: a comma-separated list of
	// addresses, to which each proxy appends its peer. It is the default.
	HeaderXForwardedFor ProxyHeader = "X-Forwarded-For"
	// HeaderForwarded is the RFC 7239 Forwarded header; its for= parameters
	// are read.
	HeaderForwarded ProxyHeader = "Forwarded"
	// HeaderXRealIP is X-Real-IP: one address, which the proxy sets
	// (overwriting what the client sent).
	HeaderXRealIP ProxyHeader = "X-Real-IP"
)

// DefaultPolicyName is the policy name in the RateLimit fields unless
// WithPolicyName says otherwise.
const DefaultPolicyName = "default"

type config struct {
	trusted []netip.Prefix
	header  ProxyHeader
	v6bits  int

	keyFunc  func(*http.Request) (string, error)
	cost     func(*http.Request) int
	skip     func(*http.Request) bool
	denied   func(http.ResponseWriter, *http.Request, limiter.Decision)
	onError  func(http.ResponseWriter, *http.Request, error)
	dryRun   bool
	onDryRun func(*http.Request, limiter.Decision)
	name     string
	legacy   bool
	problem  bool
	choose   func(*http.Request, string) []limiter.Limit
}

func newConfig(opts []Option) (config, error) {
	c := config{header: HeaderXForwardedFor, v6bits: DefaultIPv6Prefix, name: DefaultPolicyName}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// WithTrustedProxies makes the forwarding header (see WithProxyHeader) count
// when the peer is inside one of prefixes (default: no proxy is trusted, and
// only RemoteAddr counts). List every proxy and load balancer between the
// internet and this server, and nothing else: an address in a trusted
// prefix may name any client it likes. Repeated calls add prefixes.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(c *config) error {
		for _, p := range prefixes {
			p, err := normalizePrefix(p)
			if err != nil {
				return err
			}
			c.trusted = append(c.trusted, p)
		}
		return nil
	}
}

// WithProxyHeader chooses the one forwarding header that trusted proxies
// write (default HeaderXForwardedFor). Only that header is read: a proxy
// appends to or sets its own header but passes the others through from the
// client untouched, so reading several would let a client pick its own key.
func WithProxyHeader(h ProxyHeader) Option {
	return func(c *config) error {
		switch h {
		case HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP:
			c.header = h
			return nil
		}
		return fmt.Errorf("%w: WithProxyHeader(%q): unsupported header", ErrInvalidOption, string(h))
	}
}

// WithIPv6Prefix groups IPv6 clients by their first bits bits (default
// DefaultIPv6Prefix, 64): one client who controls a /64 gets one bucket, not
// 2^64. 128 keys each address separately. bits must be in [1, 128].
func WithIPv6Prefix(bits int) Option {
	return func(c *config) error {
		if bits < 1 || bits > 128 {
			return fmt.Errorf("%w: WithIPv6Prefix(%d): must be in [1, 128]", ErrInvalidOption, bits)
		}
		c.v6bits = bits
		return nil
	}
}

// WithKeyFunc replaces the client address as the limiter key (default: the
// Identity's key) with what f returns: an API key, a user, a route, or a
// composition such as route+"|"+identity.Key(r). If f returns an error, the
// request goes to the error handler with an error wrapping ErrUnidentified
// and f's error; the default handler rejects it with 400 Bad Request. Keys
// longer than 64 bytes are hashed by the limiter.
func WithKeyFunc(f func(*http.Request) (string, error)) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithKeyFunc(nil)", ErrInvalidOption)
		}
		c.keyFunc = f
		return nil
	}
}

// WithCost sets each request's cost in tokens (default 1). A cost outside
// [1, Burst] is a configuration error: the limiter returns an error
// wrapping limiter.ErrInvalidCost, which goes to the error handler (default:
// 500 Internal Server Error).
func WithCost(f func(*http.Request) int) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithCost(nil)", ErrInvalidOption)
		}
		c.cost = f
		return nil
	}
}

// WithSkip exempts the requests for which f returns true (default: none),
// for example health checks. A skipped request is not counted and gets no
// headers.
func WithSkip(f func(*http.Request) bool) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithSkip(nil)", ErrInvalidOption)
		}
		c.skip = f
		return nil
	}
}

// WithDeniedHandler replaces the response to a denied request (default: 429
// Too Many Requests with a short text body, or the problem details of
// WithProblemDetails). When f runs, the RateLimit fields and Retry-After are
// already set on w's header.
func WithDeniedHandler(f func(w http.ResponseWriter, r *http.Request, d limiter.Decision)) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithDeniedHandler(nil)", ErrInvalidOption)
		}
		c.denied = f
		return nil
	}
}

// WithErrorHandler replaces the response when no decision could be made:
// the limiter returned an error (its remote tier is down in fail-closed
// mode, it is closed, the cost is invalid) or the key function failed. The
// default writes ErrorStatus(err) with its status text and no detail; it
// never lets the request through and never shows err to the client.
func WithErrorHandler(f func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithErrorHandler(nil)", ErrInvalidOption)
		}
		c.onError = f
		return nil
	}
}

// WithDryRun decides and sets the headers as usual but never blocks (default
// off): a request that would have been denied is served, without
// Retry-After, and reported to f (which may be nil) so it can be counted or
// logged. Use it to roll out a policy and watch what it would do.
func WithDryRun(f func(r *http.Request, d limiter.Decision)) Option {
	return func(c *config) error {
		c.dryRun, c.onDryRun = true, f
		return nil
	}
}

// WithPolicyName sets the policy name in the RateLimit and RateLimit-Policy
// fields (default DefaultPolicyName). It must be 1 to 64 printable ASCII
// characters.
func WithPolicyName(name string) Option {
	return func(c *config) error {
		if name == "" || len(name) > 64 {
			return fmt.Errorf("%w: WithPolicyName(%q): must be 1 to 64 characters", ErrInvalidOption, name)
		}
		for i := range len(name) {
			if name[i] < 0x20 || name[i] > 0x7e {
				return fmt.Errorf("%w: WithPolicyName(%q): must be printable ASCII", ErrInvalidOption, name)
			}
		}
		c.name = name
		return nil
	}
}

// WithLegacyHeaders also sets X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (seconds) for clients that predate the RateLimit fields
// (default off).
func WithLegacyHeaders() Option {
	return func(c *config) error {
		c.legacy = true
		return nil
	}
}

// WithProblemDetails makes the default denied and error responses RFC 9457
// application/problem+json documents instead of plain text (default off).
func WithProblemDetails() Option {
	return func(c *config) error {
		c.problem = true
		return nil
	}
}

// WithLimits lets each request choose the limits it is charged on: choose
// returns them for r and its client key (WithKeyFunc's, or the Identity's),
// for example a plan's limit on an API key together with a per-IP limit,
// or a route's own limit. The request is then charged on exactly those
// limits, all or nothing as by limiter.AllowAll: a request one limit denies
// costs nothing on the others. When choose returns none, the request is
// charged on the Gate's own limiter as without WithLimits (the client key,
// WithCost's cost, WithPolicyName's name). A limit that repeats an earlier
// one (the same Limiter and Key) is charged once.
//
// The response's RateLimit-Policy and RateLimit fields then carry one item
// per limit, each named by its Limit.Name (non-printable characters are
// replaced by '_'; an empty name by "limit" and its position), and a denial's
// Retry-After is the time until every limit would admit the request. The
// legacy X-RateLimit fields (WithLegacyHeaders) describe the tightest limit.
// choose runs on every request: keep it fast.
func WithLimits(choose func(r *http.Request, client string) []limiter.Limit) Option {
	return func(c *config) error {
		c.choose = choose
		return nil
	}
}
