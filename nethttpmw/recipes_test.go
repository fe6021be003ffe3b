package nethttpmw_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// Different limits per route: POST /login at 5 a minute per client, every
// other route at 100 a second per client. Each route is wrapped once, by
// its own middleware, so no request is charged twice.
func Example_perRoute() {
	login, err := limiter.New(limiter.PerMinute(5))
	if err != nil {
		panic(err)
	}
	defer login.Close()
	api, err := limiter.New(limiter.PerSecond(100))
	if err != nil {
		panic(err)
	}
	defer api.Close()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

	mux := http.NewServeMux()
	mux.Handle("POST /login", nethttpmw.New(login, nethttpmw.WithPolicyName("login"))(ok))
	mux.Handle("/", nethttpmw.New(api, nethttpmw.WithPolicyName("api"))(ok))

	for _, target := range []string{"/login", "/login", "/login", "/login", "/login", "/login", "/orders"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", target, nil))
		fmt.Println(target, w.Code, w.Header().Get("RateLimit-Policy"))
	}
	// Output:
	// /login 200 "login";q=5;w=60
	// /login 200 "login";q=5;w=60
	// /login 200 "login";q=5;w=60
	// /login 200 "login";q=5;w=60
	// /login 200 "login";q=5;w=60
	// /login 429 "login";q=5;w=60
	// /orders 200 "api";q=100;w=1
}

// Limit per API key when the request carries one, and per client address
// otherwise. The key function sees the request; a client address comes from
// an Identity, which reads forwarding headers only from trusted proxies.
// (Check the key against your store of keys first, or an attacker gets a
// fresh bucket per invented key; the limit per address still applies to
// anonymous requests.)
func ExampleWithKeyFunc() {
	id, err := nethttpmw.NewIdentity()
	if err != nil {
		panic(err)
	}
	keyOf := func(r *http.Request) (string, error) {
		if key := r.Header.Get("X-API-Key"); key != "" {
			return "key:" + key, nil
		}
		return "ip:" + id.Key(r), nil
	}
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	h := nethttpmw.New(l, nethttpmw.WithKeyFunc(keyOf))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for _, key := range []string{"alpha", "alpha", "beta", ""} {
		r := httptest.NewRequest("GET", "/", nil)
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(strings.TrimSpace(key + " " + fmt.Sprint(w.Code)))
	}
	// Output:
	// alpha 200
	// alpha 429
	// beta 200
	// 200
}

// A Gate is the middleware's parts, for a handler or a gateway that is not
// a middleware: the client's key, the decision, the response headers and
// the default 429.
func ExampleGate() {
	l, err := limiter.New(limiter.PerMinute(1))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	g, err := nethttpmw.NewGate(l)
	if err != nil {
		panic(err)
	}
	handle := func(w http.ResponseWriter, r *http.Request) {
		key, err := g.Key(r)
		if err != nil {
			g.WriteError(w, err) // 400: the client could not be identified
			return
		}
		d, err := l.AllowN(r.Context(), key, g.Cost(r))
		if err != nil { // no decision was made
			g.WriteError(w, err)
			return
		}
		if g.Apply(r, w.Header(), d) { // headers set; true means deny
			g.WriteDenied(w)
			return
		}
		io.WriteString(w, "proxied")
	}
	for range 2 {
		w := httptest.NewRecorder()
		handle(w, httptest.NewRequest("GET", "/", nil))
		fmt.Println(w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// 200 "default";r=0;t=60
	// 429 "default";r=0;t=60
}

// Anonymous clients get 60 a minute per IP; an API key gets its plan's
// limit, and every client at most 100 a second per IP. The response
// describes every limit that applied; a request one limit denies costs
// nothing on the others.
func ExampleWithLimits() {
	plans, err := limiter.NewPlans(map[string]limiter.Policy{
		"free": limiter.PerMinute(600),
		"pro":  limiter.PerMinute(6000),
	})
	if err != nil {
		panic(err)
	}
	defer plans.Close()
	perIP, err := limiter.New(limiter.PerSecond(100))
	if err != nil {
		panic(err)
	}
	defer perIP.Close()
	anonymous, err := limiter.New(limiter.PerMinute(60))
	if err != nil {
		panic(err)
	}
	defer anonymous.Close()
	planOf := map[string]string{"k-123": "pro"} // your API keys

	limits := func(r *http.Request, client string) []limiter.Limit {
		ip := limiter.Limit{Name: "per-ip", Limiter: perIP, Key: client}
		key := r.Header.Get("X-API-Key")
		if l, ok := plans.Limiter(planOf[key]); ok {
			return []limiter.Limit{ip, {Name: planOf[key], Limiter: l, Key: key}}
		}
		return []limiter.Limit{ip, {Name: "anonymous", Limiter: anonymous, Key: client}}
	}
	h := nethttpmw.New(perIP, nethttpmw.WithLimits(limits))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	for _, key := range []string{"k-123", ""} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Values("RateLimit"))
	}
	// Output:
	// 200 ["per-ip";r=99;t=1 "pro";r=5999;t=1]
	// 200 ["per-ip";r=98;t=1 "anonymous";r=59;t=1]
}
