// Command fleet measures Redis-backed limiters at fleet scale and writes
// bench/results/fleet.md: several limiter instances, each with its own
// go-redis client (its own connection pool), share one redis-server; each
// instance runs 1, 16, 64 or 256 concurrent requests, each request on keys
// of its own. floodgate with coalescing on and off, go-redis/redis_rate and
// ulule/limiter run in the same process, in rounds that rotate their order
// (interleaved), and each cell reports decisions/s, Redis CPU per decision
// (INFO cpu before and after), client CPU per decision (the process's
// rusage: every instance's client, limiter and workload) and p99 latency.
//
// The policy is 10^6/s with a burst of 10^6 on every key: far above what a
// run reaches, so every decision is an admission, and low enough that every
// implementation writes its state on every decision (at 10^9/s redis_rate's
// increment rounds to zero and it skips its write).
//
//	cd bench && go run ./cmd/fleet                 # the full run (minutes)
//	cd bench && go run ./cmd/fleet -smoke -out /tmp/fleet.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/bench"
)

// Options are the command's flags.
type Options struct {
	Instances int
	Conc      []int
	Rounds    int
	Duration  time.Duration
	Redis     string // an address to use instead of starting redis-server
	Out       string
	Smoke     bool
	Args      string // the command line, for the report
}

func main() {
	var o Options
	var conc string
	flag.IntVar(&o.Instances, "instances", 4, "limiter instances, each with its own client")
	flag.StringVar(&conc, "conc", "1,16,64,256", "concurrent requests per instance, comma-separated")
	flag.IntVar(&o.Rounds, "rounds", 5, "interleaved rounds")
	flag.DurationVar(&o.Duration, "duration", 2*time.Second, "measured time per cell")
	flag.StringVar(&o.Redis, "redis", "", "address of a redis-server to use (default: start one on loopback)")
	flag.StringVar(&o.Out, "out", "results/fleet.md", "report to write")
	flag.BoolVar(&o.Smoke, "smoke", false, "a tiny run that checks the workload, not a measurement")
	flag.Parse()
	for _, f := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			log.Fatalf("fleet: bad -conc %q", conc)
		}
		o.Conc = append(o.Conc, n)
	}
	o.Args = strings.Join(os.Args[1:], " ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// Smoke shrinks o to a run of a second or two.
func (o *Options) smoke() {
	o.Instances, o.Conc, o.Rounds, o.Duration = 2, []int{1, saverConc}, 1, 150*time.Millisecond
}

// An impl is one implementation as the fleet runs it.
type impl struct {
	name string
	base bench.RedisImpl
	cfg  func(*bench.RedisConfig)
}

func impls() []impl {
	var out []impl
	for _, im := range bench.RedisImpls() {
		switch im.Name {
		case "floodgate":
			out = append(out,
				impl{"floodgate", im, func(*bench.RedisConfig) {}},
				impl{"floodgate (no coalescing)", im, func(c *bench.RedisConfig) { c.NoCoalesce = true }})
		default:
			out = append(out, impl{im.Name, im, func(*bench.RedisConfig) {}})
		}
	}
	return out
}

// fleetPolicy: every decision admitted, and written (see the package doc).
var fleetPolicy = bench.Config{Rate: 1e6, Burst: 1e6}

// keysPerRequest is how many keys each concurrent request cycles through.
const keysPerRequest = 64

// A workload is what the requests ask: the policy, floodgate's prefetch,
// and the keys each request cycles through.
type workload struct {
	name     string
	policy   bench.Config
	prefetch int
	keys     func(instance, request int) []string
	admitAll bool // every decision must be an admission
}

// distinct is the fleet's main workload: every request on keys of its own,
// every decision an admission that Redis makes and writes.
var distinct = workload{name: "distinct keys", policy: fleetPolicy, admitAll: true,
	keys: func(n, g int) []string {
		keys := make([]string, keysPerRequest)
		for k := range keys {
			keys[k] = fmt.Sprintf("i%d.g%d.k%d", n, g, k)
		}
		return keys
	}}

// The workloads that show what floodgate's deny cache and prefetch save
// Redis, at 16 concurrent requests per instance: every request of every
// instance flooding one key at 100/s (burst 10); and each instance's
// requests on one hot key of its own at 2000/s (burst 100, below what
// the requests ask, so the key is hot), with prefetch 64.
var (
	flood = workload{name: "flood: one key, 100/s, all instances", policy: bench.Config{Rate: 100, Burst: 10},
		keys: func(int, int) []string { return []string{"flooded"} }}
	hotKey = workload{name: "hot key per instance, 2000/s, prefetch 64", policy: bench.Config{Rate: 2000, Burst: 100}, prefetch: 64,
		keys: func(n, _ int) []string { return []string{fmt.Sprintf("hot%d", n)} }}
)

// savers are the workloads run for floodgate alone, at saverConc
// concurrent requests per instance.
var savers = []workload{flood, hotKey}

const saverConc = 16

// A cell is one measurement: one implementation at one concurrency.
type cell struct {
	decisions           int64 // made by Redis
	fallbacks           int64 // made by floodgate's failure mode instead (timeouts on an overloaded machine)
	admitted            int64 // of the decisions
	calls               int64 // script calls Redis ran (INFO commandstats: evalsha, eval)
	elapsed             time.Duration
	redisCPU, client    time.Duration
	p99                 time.Duration
	perSec              float64
	redisPer, clientPer float64 // µs per decision
}

// Run runs the fleet and writes the report to o.Out, logging progress to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	if o.Smoke {
		o.smoke()
	}
	addr := o.Redis
	if addr == "" {
		srv, err := startRedis()
		if err != nil {
			return err
		}
		defer srv.stop()
		addr = srv.addr
	}
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer admin.Close()
	ims := impls()
	// results[impl][conc] holds one cell per round
	results := make([][][]cell, len(ims))
	for i := range results {
		results[i] = make([][]cell, len(o.Conc))
	}
	saved := make([][]cell, len(savers))
	var prefix atomic.Int64
	for round := range o.Rounds {
		for ci, conc := range o.Conc {
			for k := range ims {
				i := (k + round + ci) % len(ims) // rotate the order: interleaved
				c, err := measure(ctx, admin, addr, ims[i], distinct, o, conc, fmt.Sprintf("f%d", prefix.Add(1)))
				if err != nil {
					return fmt.Errorf("fleet: %s at %d: %w", ims[i].name, conc, err)
				}
				results[i][ci] = append(results[i][ci], c)
				fmt.Fprintf(w, "round %d  conc %3d  %-26s %9.0f decisions/s  redis %5.2f µs  client %5.2f µs  p99 %v  fallbacks %d\n",
					round+1, conc, ims[i].name, c.perSec, c.redisPer, c.clientPer, c.p99, c.fallbacks)
			}
		}
		for k, wl := range savers {
			c, err := measure(ctx, admin, addr, ims[0], wl, o, saverConc, fmt.Sprintf("f%d", prefix.Add(1)))
			if err != nil {
				return fmt.Errorf("fleet: %s: %w", wl.name, err)
			}
			saved[k] = append(saved[k], c)
			fmt.Fprintf(w, "round %d  %-44s %9.0f decisions/s  redis %5.3f µs  client %5.2f µs\n",
				round+1, wl.name, c.perSec, c.redisPer, c.clientPer)
		}
		if err := admin.FlushAll(ctx).Err(); err != nil {
			return err
		}
	}
	md := report(o, ims, results, saved)
	if err := os.WriteFile(o.Out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s\n", o.Out)
	return nil
}

// measure runs one cell: o.Instances instances of im, each with its own
// client and conc concurrent requests, for o.Duration.
func measure(ctx context.Context, admin *redis.Client, addr string, im impl, wl workload, o Options, conc int, prefix string) (cell, error) {
	type instance struct {
		l      bench.RedisLimiter
		client *redis.Client
		keys   [][]string
	}
	insts := make([]instance, o.Instances)
	for n := range insts {
		client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, Protocol: 2, PoolSize: max(conc, 10)})
		cfg := bench.RedisConfig{Config: wl.policy, Prefix: prefix, Prefetch: wl.prefetch}
		im.cfg(&cfg)
		l, err := im.base.New(client, cfg)
		if err != nil {
			client.Close()
			return cell{}, err
		}
		insts[n] = instance{l: l, client: client, keys: make([][]string, conc)}
		for g := range conc {
			insts[n].keys[g] = wl.keys(n, g)
		}
	}
	defer func() {
		for _, in := range insts {
			in.l.Close()
			in.client.Close()
		}
	}()
	for _, in := range insts { // connections made, scripts loaded
		for g := range conc {
			if ok, err := in.l.Allow(ctx, in.keys[g][0]); err != nil || (!ok && wl.admitAll) {
				return cell{}, fmt.Errorf("warm-up: allowed %v, %v", ok, err)
			}
		}
	}
	runtime.GC()
	srv0, err := bench.ReadServerStats(ctx, admin)
	if err != nil {
		return cell{}, err
	}
	client0 := processCPU()
	var admitted atomic.Int64
	fallbacks := func() (n int64) {
		for _, in := range insts {
			if f, ok := in.l.(interface{ Fallbacks() uint64 }); ok {
				n += int64(f.Fallbacks())
			}
		}
		return n
	}
	fallbacks0 := fallbacks()
	var stop atomic.Bool
	var failed atomic.Value
	lat := make([][]time.Duration, o.Instances*conc)
	var wg sync.WaitGroup
	start := time.Now()
	for n, in := range insts {
		for g := range conc {
			slot := n*conc + g
			wg.Go(func() {
				samples := make([]time.Duration, 0, 4096)
				keys := in.keys[g]
				for i := 0; !stop.Load() && ctx.Err() == nil; i++ {
					t := time.Now()
					ok, err := in.l.Allow(ctx, keys[i%len(keys)])
					samples = append(samples, time.Since(t))
					if ok {
						admitted.Add(1)
					}
					if err != nil || (!ok && wl.admitAll) {
						failed.CompareAndSwap(nil, fmt.Errorf("a decision: allowed %v, error %v", ok, err))
						stop.Store(true)
					}
				}
				lat[slot] = samples
			})
		}
	}
	time.Sleep(o.Duration)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	client1 := processCPU()
	fallbacks1 := fallbacks()
	srv1, err := bench.ReadServerStats(ctx, admin)
	if err != nil {
		return cell{}, err
	}
	if e := failed.Load(); e != nil {
		return cell{}, e.(error)
	}
	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	if int64(len(all)) <= fallbacks1-fallbacks0 {
		return cell{}, errors.New("no decisions by Redis")
	}
	slices.Sort(all)
	c := cell{decisions: int64(len(all)) - (fallbacks1 - fallbacks0), fallbacks: fallbacks1 - fallbacks0,
		admitted: admitted.Load() - (fallbacks1 - fallbacks0), calls: srv1.ScriptCalls() - srv0.ScriptCalls(), elapsed: elapsed, redisCPU: time.Duration((srv1.CPU - srv0.CPU) * float64(time.Second)), client: client1 - client0,
		p99: all[(len(all)*99)/100]}
	c.perSec = float64(c.decisions) / elapsed.Seconds()
	c.redisPer = float64(c.redisCPU.Microseconds()) / float64(c.decisions)
	c.clientPer = float64(c.client.Microseconds()) / float64(c.decisions)
	return c, nil
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A server is a redis-server this command started.
type server struct {
	addr string
	cmd  *exec.Cmd
	dir  string
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and waits until it answers.
func startRedis() (*server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("fleet: redis-server not on PATH (or pass -redis addr): %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "fleet-redis")
	if err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir}
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no")
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr, Protocol: 2})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("fleet: redis-server did not answer within 10s")
		}
	}
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func pick(cs []cell, f func(cell) float64) []float64 {
	out := make([]float64, len(cs))
	for i, c := range cs {
		out[i] = f(c)
	}
	return out
}
