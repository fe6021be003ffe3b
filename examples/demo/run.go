package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/nethttpmw"
)

// network is where the servers listen and the clients dial: loopback TCP
// when the demo runs, an in-memory network in its test.
type network interface {
	Listen() (net.Listener, error)
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

type tcp struct{}

func (tcp) Listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func (tcp) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// The simulated reverse proxy connects from loopback: the only hop the
// servers trust to report the client's address.
var trustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// instance is one floodgate-protected server.
type instance struct {
	l    *limiter.Limiter
	srv  *http.Server
	addr string
	done chan error
}

func (cfg config) policy() limiter.Policy {
	return limiter.Policy{Rate: rate.Limit(cfg.rate), Burst: cfg.burst}
}

func startInstance(n network, p limiter.Policy, opts ...limiter.Option) (*instance, error) {
	l, err := limiter.New(p, opts...)
	if err != nil {
		return nil, err
	}
	ln, err := n.Listen()
	if err != nil {
		l.Close()
		return nil, err
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mw := nethttpmw.New(l, nethttpmw.WithTrustedProxies(trustedProxies...), nethttpmw.WithPolicyName("demo"))
	in := &instance{l: l, srv: &http.Server{Handler: mw(ok), ReadHeaderTimeout: 5 * time.Second}, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { in.done <- in.srv.Serve(ln) }()
	return in, nil
}

func (in *instance) stop() error {
	err := in.srv.Shutdown(context.Background())
	if serveErr := <-in.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return errors.Join(err, in.l.Close())
}

// result is what a run measured, for its test.
type result struct {
	ok      bool // every verdict passed
	clients []*client
	cells   uint64 // decisions the instances made on their cells (Stats.Overflowed)
}

// run drives the clients against cfg.instances servers for cfg.duration,
// writing the live table and the verdicts to out. res.ok is false if a
// verdict failed.
func run(ctx context.Context, cfg config, out io.Writer, n network) (res result, err error) {
	if cfg.duration <= 0 || cfg.instances < 1 || cfg.rate <= 0 || cfg.burst < 1 || cfg.maxKeys < 1 || cfg.sprayers < 0 || cfg.sprayRate < 0 {
		return res, fmt.Errorf("invalid flags: -duration, -rate, -burst and -maxkeys must be positive, -instances at least 1, -sprayers and -sprayrate not negative")
	}
	opts := []limiter.Option{limiter.WithMaxKeys(cfg.maxKeys)}
	shared, err := sharedStore(cfg)
	if err != nil {
		return res, err
	}
	defer shared.close()
	opts = append(opts, shared.opts...)

	var instances []*instance
	defer func() {
		for _, in := range instances {
			err = errors.Join(err, in.stop())
		}
	}()
	for range cfg.instances {
		in, err := startInstance(n, cfg.policy(), opts...)
		if err != nil {
			return res, err
		}
		instances = append(instances, in)
	}

	fmt.Fprintf(out, "floodgate demo: %d instance(s)%s, policy %v per client, %v, key cap %d per instance\n",
		cfg.instances, shared.describe, cfg.policy(), cfg.duration, cfg.maxKeys)
	describeSpray(out, cfg)
	fmt.Fprintf(out, "clients reach the servers through a trusted proxy on 127.0.0.1 that appends their address to X-Forwarded-For\n\n")

	clients := newClients(cfg)
	transport := &http.Transport{DialContext: n.DialContext, MaxIdleConnsPerHost: 16}
	defer transport.CloseIdleConnections()
	httpc := &http.Client{Transport: transport, Timeout: 5 * time.Second}

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.drive(runCtx, httpc, instances) })
	}
	rep := newReporter(out, cfg, clients, instances)
	rep.live(runCtx)
	wg.Wait()
	return result{ok: rep.verdicts(), clients: clients, cells: cellDecisions(instances)}, nil
}

// describeSpray says what the spray does to the table.
func describeSpray(out io.Writer, cfg config) {
	addrs, perSecond := cfg.spray()
	cycle, refill := float64(addrs)/perSecond, 1/cfg.rate
	switch {
	case cfg.instances > 1:
		fmt.Fprintf(out, "the sprayer rotates %d addresses at %.4g/s; with a shared Redis, every client's bucket lives there,\n", addrs, perSecond)
		fmt.Fprintf(out, "and the key cap bounds each instance's local cache (and the buckets and cells it falls back on if Redis fails)\n")
	case cycle < refill:
		fmt.Fprintf(out, "the sprayer comes back to each of its %d addresses every %.2fs, before the token it spent has refilled (%.2fs):\n", addrs, cycle, refill)
		fmt.Fprintf(out, "its buckets fill the table and none can be retired, so the keys beyond the cap are decided on the cells\n")
	default:
		fmt.Fprintf(out, "the sprayer comes back to each of its %d addresses every %.2fs, after the token it spent has refilled (%.2fs):\n", addrs, cycle, refill)
		fmt.Fprintf(out, "its buckets can be retired, so new keys mostly take their slots and few are decided on the cells\n")
	}
}

// cellDecisions is how many decisions the instances made on their cells:
// for a key that found the table full and nothing in it retirable.
func cellDecisions(instances []*instance) uint64 {
	var n uint64
	for _, in := range instances {
		n += in.l.Stats().Overflowed
	}
	return n
}
