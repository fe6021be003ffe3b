// Command gateway is a rate-limiting reverse proxy, the shape of an API
// gateway built on floodgate:
//
//   - every request is checked against a per-IP limit and the limit of its
//     API key's plan at once (limiter.AllowAll): a request denied by one
//     does not spend the other;
//   - plans and API keys come from a JSON file (-plans; a built-in default
//     otherwise) and are reloaded on SIGHUP without a restart;
//   - with -redis, limits hold across every instance sharing that Redis;
//   - /debug/vars serves the limiters' counters (expvar).
//
// Run it with no flags and it proxies to a built-in upstream:
//
//	go run ./examples/gateway
//	curl -i localhost:8080/                                # anonymous plan, per client IP
//	curl -i -H 'X-API-Key: demo-pro-key' localhost:8080/   # the pro plan
//	curl localhost:8080/debug/vars
package main

import (
	"context"
	"expvar"
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

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	upstream := flag.String("upstream", "", "upstream URL (default: a built-in upstream on 127.0.0.1)")
	plansFile := flag.String("plans", "", "plans file, reloaded on SIGHUP (default: built-in plans)")
	redisAddr := flag.String("redis", "", "Redis host:port: share the limits with every instance using it")
	failClosed := flag.Bool("fail-closed", false, "while Redis cannot decide, deny every request (default: each instance enforces the limits on its own)")
	trust := flag.String("trust", "", "comma-separated CIDRs of trusted proxies in front of the gateway")
	flag.Parse()
	if err := run(*addr, *upstream, *plansFile, *redisAddr, *failClosed, *trust); err != nil {
		log.Fatal(err)
	}
}

func run(addr, upstream, plansFile, redisAddr string, failClosed bool, trust string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := loadConfig(plansFile)
	if err != nil {
		return err
	}
	prefixes, err := parsePrefixes(trust)
	if err != nil {
		return err
	}
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
	ipOpts, planOpts, closeStore, err := storeOptions(redisAddr, failClosed)
	if err != nil {
		return err
	}
	defer closeStore()
	gw, err := newGateway(c, target, prefixes, ipOpts, planOpts)
	if err != nil {
		return err
	}
	defer gw.Close()
	expvar.Publish("ratelimit", expvar.Func(gw.stats))

	go reloadOnHUP(ctx, gw, plansFile)

	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/", gw)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("gateway on http://%s -> %s (plans: %s)", addr, upstream, orDefault(plansFile, "built-in"))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
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
