// Command gateway is a rate-limiting reverse proxy, the shape of an API
// gateway built on floodgate:
//
//   - every request is checked against a per-IP limit and the limit of its
//     API key's plan at once (limiter.AllowAll): a request denied by one
//     does not spend the other;
//   - plans and API keys come from a JSON file (-plans; a built-in default
//     otherwise) and are reloaded on SIGHUP without a restart;
//   - with -redis, limits hold across every instance sharing that Redis;
//   - every request is limited, one with an unknown API key included (it
//     is charged to its IP's limit, then refused with 401);
//   - during a Redis outage, or when Redis takes longer than -redis-timeout
//     to answer, the limiters' failure mode decides (-fail-closed to deny; by
//     default each instance enforces the limits on its own), and the gateway
//     applies its decisions like any other: 200 or 429, not 503;
//   - the operator endpoint /debug/vars (the limiters' counters, expvar's
//     format) is served on its own listener, -operator-addr, loopback by
//     default; the public port never serves /debug/.
//
// Run it with no flags and it proxies to a built-in upstream:
//
//	go run ./examples/gateway
//	curl -i localhost:8080/                                # anonymous plan, per client IP
//	curl -i -H 'X-API-Key: demo-pro-key' localhost:8080/   # the pro plan
//	curl localhost:9090/debug/vars                         # the counters, from this host only
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// flags are the command line.
type flags struct {
	addr, operatorAddr, upstream, plansFile, redisAddr, trust string
	failClosed                                                bool
	redisTimeout                                              time.Duration
}

func main() {
	var f flags
	flag.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address of the gateway")
	flag.StringVar(&f.operatorAddr, "operator-addr", defaultOperatorAddr, "listen address of the operator endpoints (/debug/vars); empty: none")
	flag.StringVar(&f.upstream, "upstream", "", "upstream URL (default: a built-in upstream on 127.0.0.1)")
	flag.StringVar(&f.plansFile, "plans", "", "plans file, reloaded on SIGHUP (default: built-in plans)")
	flag.StringVar(&f.redisAddr, "redis", "", "Redis host:port: share the limits with every instance using it")
	flag.BoolVar(&f.failClosed, "fail-closed", false, "while Redis cannot decide, deny every request (default: each instance enforces the limits on its own)")
	flag.DurationVar(&f.redisTimeout, "redis-timeout", 100*time.Millisecond, "how long a decision waits for Redis before the failure mode decides it")
	flag.StringVar(&f.trust, "trust", "", "comma-separated CIDRs of trusted proxies in front of the gateway")
	flag.Parse()
	if err := run(f); err != nil {
		log.Fatal(err)
	}
}

func run(f flags) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := loadConfig(f.plansFile)
	if err != nil {
		return err
	}
	prefixes, err := parsePrefixes(f.trust)
	if err != nil {
		return err
	}
	upstream := f.upstream
	if upstream == "" {
		u, stopUpstream, err := builtinUpstream()
		if err != nil {
			return err
		}
		defer stopUpstream()
		upstream = u
	}
	target, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	ipOpts, planOpts, closeStore, err := storeOptions(f.redisAddr, f.failClosed, f.redisTimeout)
	if err != nil {
		return err
	}
	defer closeStore()
	gw, err := newGateway(c, target, prefixes, ipOpts, planOpts)
	if err != nil {
		return err
	}
	defer gw.Close()

	go reloadOnHUP(ctx, gw, f.plansFile)

	servers := newServers(f.addr, f.operatorAddr, gw)
	if f.operatorAddr != "" && !isLoopback(f.operatorAddr) {
		log.Printf("warning: the operator endpoints listen on %s, not on loopback", f.operatorAddr)
	}
	errc := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Printf("gateway on http://%s -> %s (plans: %s), operator endpoints on %s",
		f.addr, upstream, orDefault(f.plansFile, "built-in"), orDefault(f.operatorAddr, "none"))
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		err = errors.Join(err, srv.Shutdown(shutdown))
	}
	return err
}

// newServers returns the public server, on addr, where every request goes
// through gw, and the operator server on operatorAddr, unless it is empty.
func newServers(addr, operatorAddr string, gw *gateway) []*http.Server {
	servers := []*http.Server{{Addr: addr, Handler: gw, ReadHeaderTimeout: 5 * time.Second}}
	if operatorAddr != "" {
		servers = append(servers, &http.Server{Addr: operatorAddr, Handler: operatorHandler(gw), ReadHeaderTimeout: 5 * time.Second})
	}
	return servers
}

// isLoopback reports whether the listen address addr is on loopback only.
// A host name other than localhost counts as not loopback, as does an empty
// host (every interface).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func reloadOnHUP(ctx context.Context, gw *gateway, plansFile string) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		c, err := loadConfig(plansFile)
		if err == nil {
			err = gw.Reload(c)
		}
		if err != nil {
			log.Printf("reload failed, keeping the plans in force: %v", err)
			continue
		}
		log.Printf("reloaded %d plans, %d keys", len(c.Plans), len(c.Keys))
	}
}

// builtinUpstream starts a trivial upstream on a free loopback port.
func builtinUpstream() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from upstream: %s %s\n", r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("-trust: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stats is the expvar view: the per-IP limiter and every plan.
func (g *gateway) stats() any {
	plans := map[string]any{}
	for name := range g.plans.Policies() {
		if l, ok := g.plans.Limiter(name); ok {
			plans[name] = l.Stats()
		}
	}
	return map[string]any{perIPName: g.perIP.Stats(), "plans": plans}
}
