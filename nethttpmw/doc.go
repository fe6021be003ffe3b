// Package nethttpmw is net/http middleware that rate-limits each client
// with a [limiter.Limiter], and the client identity and response headers
// that package echomw and gateways share.
//
//	l, err := limiter.New(limiter.PerSecond(10))
//	if err != nil { … }
//	defer l.Close()
//	http.ListenAndServe(addr, nethttpmw.New(l)(mux))
//
// New returns a func(http.Handler) http.Handler, so it also fits
// mux.Use-style routers and chi.
//
// # Client identity
//
// By default the key is the IP address of the TCP peer (RemoteAddr), and
// X-Forwarded-For, X-Real-IP, Forwarded and the like are ignored: any client
// can write them. Behind a proxy or load balancer, name it with
// [WithTrustedProxies] (and [WithProxyHeader] if it does not write
// X-Forwarded-For); the header is then walked from the right, and the first
// address that is not a trusted proxy is the client. IPv4-mapped IPv6 is
// IPv4; IPv6 clients are grouped by /64 ([WithIPv6Prefix]). A request whose
// address cannot be determined shares the bucket [UnidentifiedKey]; it is
// never unlimited. [Identity] is exported for key functions and gateways.
//
// # Responses
//
// Every limited response carries the RateLimit-Policy and RateLimit fields
// of draft-ietf-httpapi-ratelimit-headers-10:
//
//	RateLimit-Policy: "default";q=10;w=1
//	RateLimit: "default";r=9;t=1
//
// A denied request gets 429 Too Many Requests with Retry-After in whole
// seconds (at least 1, and equal to the RateLimit t parameter) and a short
// body, or RFC 9457 problem details ([WithProblemDetails]). Legacy
// X-RateLimit-* headers are an option ([WithLegacyHeaders]).
//
// # Errors
//
// When the limiter returns an error (it is closed, a cost is invalid),
// no decision was made and the request goes to the error handler. The
// default rejects it (see [ErrorStatus]): the request is never let through
// unlimited, and the error's text is never sent to the client.
//
// When the limiter's remote tier is down, that is not an error: the
// limiter's failure mode decides (failing open: this instance's own
// buckets; with store.Config.FailClosed: a denial until the breaker's
// cooldown ends), the Decision
// says so (Fallback), and the middleware applies it like any other, with
// the same headers; the outage shows in the limiter's Stats and observer.
//
// # Cost
//
// For a client that has been seen recently, the middleware itself
// allocates only the response's header values: 32 bytes (80 on a denial)
// handed out in disjoint pieces of 1 KiB blocks, about one allocation per
// 30 admitted responses (a response kept alive, such as a stream, keeps its
// block alive). The []string values in the header map are the
// response's own, so a handler may edit them in place or append to them;
// the strings in them are formatted once per policy and cached (under a
// Burst too large to cache every RateLimit value, the 64 seen last; one
// formatted anew costs one allocation). The key comes from a bounded
// cache. The values follow the limiter's current policy: after
// SetPolicy or Plans.Update, the next response advertises the new one.
package nethttpmw
