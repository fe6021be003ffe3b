package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// gateway is a reverse proxy that checks each request against two limits
// at once: the client IP's, and its API key's plan. A request denied by one
// gives the other its tokens back.
type gateway struct {
	proxy  *httputil.ReverseProxy
	id     *nethttpmw.Identity
	perIP  *limiter.Limiter
	plans  *limiter.Plans
	trust  []netip.Prefix
	state  atomic.Pointer[state] // replaced whole on reload
	reload sync.Mutex
}

// state is what a reload replaces: the key table and a Gate (headers and
// 429 responses) per limit, built for the policies in force.
type state struct {
	keys  map[string]string
	gates map[string]*nethttpmw.Gate // "per-ip" and each plan
}

const perIPName = "per-ip"

// newGateway returns a gateway proxying to upstream. ipOpts and planOpts
// configure the per-IP limiter and the plans' limiters (main adds a Redis
// store with its own key prefix to each).
func newGateway(c *config, upstream *url.URL, trust []netip.Prefix, ipOpts, planOpts []limiter.Option) (*gateway, error) {
	id, err := nethttpmw.NewIdentity(nethttpmw.WithTrustedProxies(trust...))
	if err != nil {
		return nil, err
	}
	perIP, err := limiter.New(c.PerIP.limiter(), ipOpts...)
	if err != nil {
		return nil, err
	}
	plans, err := limiter.NewPlans(c.policies(), planOpts...)
	if err != nil {
		perIP.Close()
		return nil, err
	}
	g := &gateway{proxy: httputil.NewSingleHostReverseProxy(upstream), id: id, perIP: perIP, plans: plans, trust: trust}
	if err := g.install(c); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// install builds the state for c and publishes it. A Gate's headers
// follow its Limiter's current policy, so a limit whose Limiter survived
// the reload (SetPolicy, or Plans.Update of a changed plan) keeps its Gate;
// only a new plan's Limiter needs a new one.
func (g *gateway) install(c *config) error {
	s := &state{keys: c.Keys, gates: map[string]*nethttpmw.Gate{}}
	prev := g.state.Load()
	add := func(name string, l *limiter.Limiter) error {
		if prev != nil && prev.gates[name] != nil && prev.gates[name].Limiter() == l {
			s.gates[name] = prev.gates[name]
			return nil
		}
		gate, err := nethttpmw.NewGate(l, nethttpmw.WithPolicyName(name), nethttpmw.WithTrustedProxies(g.trust...))
		s.gates[name] = gate
		return err
	}
	if err := add(perIPName, g.perIP); err != nil {
		return err
	}
	for name := range c.Plans {
		l, ok := g.plans.Limiter(name)
		if !ok {
			return fmt.Errorf("plan %q missing after update", name)
		}
		if err := add(name, l); err != nil {
			return err
		}
	}
	g.state.Store(s)
	return nil
}

// Reload applies a new config: all of it, or none of it.
func (g *gateway) Reload(c *config) error {
	g.reload.Lock()
	defer g.reload.Unlock()
	if err := g.perIP.SetPolicy(c.PerIP.limiter()); err != nil {
		return err
	}
	if err := g.plans.Update(c.policies()); err != nil {
		return err
	}
	return g.install(c)
}

// ServeHTTP limits every request before anything else is done with it. A
// request with an unknown API key is charged to the per-IP limit alone and
// then refused (401): guessing keys spends the guesser's own tokens, and
// ends in 429s.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := g.state.Load()
	ip := g.id.Key(r)
	limits := [2]limiter.Limit{{Name: perIPName, Limiter: g.perIP, Key: ip}}
	plan, key := anonymous, ip
	if apiKey := r.Header.Get("X-API-Key"); apiKey != "" {
		plan, key = s.keys[apiKey], apiKey // plan is "" for an unknown key
	}
	n := 1
	if plan != "" {
		planLimiter, ok := g.plans.Limiter(plan)
		if !ok {
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		limits[1] = limiter.Limit{Name: plan, Limiter: planLimiter, Key: plan + "/" + key} // plans share one key space in Redis
		n = 2
	}
	d, err := limiter.AllowAll(r.Context(), limits[:n]...)
	gate := s.gates[d.Tightest]
	if gate == nil {
		gate = s.gates[perIPName]
	}
	// An error means that no decision was made: a limiter closed by a
	// reload racing this request, or the client gone before Redis
	// answered. A Redis outage is not an error: the failure mode decided
	// (d.Fallback), and its decision is applied below like any other.
	if err != nil {
		gate.WriteError(w, err)
		return
	}
	if gate.Apply(r, w.Header(), d.Decision) {
		gate.WriteDenied(w)
		return
	}
	switch {
	case plan == "":
		http.Error(w, "unknown API key", http.StatusUnauthorized)
	case isOperatorPath(r.URL.Path):
		http.NotFound(w, r)
	default:
		g.proxy.ServeHTTP(w, r)
	}
}

// isOperatorPath reports whether p is under /debug/, which the public port
// never serves: neither the gateway's counters (they are on the operator
// listener, see operatorHandler) nor the upstream's (a Go upstream that
// imports net/http/pprof serves /debug/pprof/ on its default mux).
func isOperatorPath(p string) bool {
	p = path.Clean("/" + p)
	return p == "/debug" || strings.HasPrefix(p, "/debug/")
}

// Close stops the limiters.
func (g *gateway) Close() error {
	return errors.Join(g.perIP.Close(), g.plans.Close())
}
