package redisstore

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

//go:embed script.lua
var script string

// scriptSHA is the script's SHA-1 digest, the name EVALSHA knows it by.
// The command arguments are boxed once here rather than on every call.
var (
	scriptSHA = func() string {
		sum := sha1.Sum([]byte(script))
		return hex.EncodeToString(sum[:])
	}()
	argSHA    any = scriptSHA
	argScript any = script
	argOneKey any = "1"
)

// Errors returned by New and Store's methods.
var (
	// ErrInvalidOption is wrapped by New's error for a bad option or
	// client.
	ErrInvalidOption = errors.New("store: invalid option")
	// ErrBadReply is wrapped by Take's, Peek's and Refund's error when Redis
	// answers with something the script never returns (a foreign script
	// under the same name, a proxy in the way).
	ErrBadReply = errors.New("store: unexpected reply from redis")
)

// DefaultPrefix namespaces the keys of a Redis store unless WithPrefix says
// otherwise.
const DefaultPrefix = "floodgate"

// A Store is a [store.Store] on Redis: one key per client key holding
// its bucket, one Lua script call per decision (a single key, so it works
// on Redis Cluster), and Redis's TIME as the only clock, so instances with
// skewed clocks still agree. Keys expire when their bucket would be full
// again, so Redis holds state only for clients that recently spent tokens.
//
// A Store is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	policy atomic.Pointer[policyArgs]

	noCoalesce bool
	byKey      bool      // the client routes commands by key (Cluster, Ring)
	main       lane      // every call's lane, but with a Cluster
	cluster    clusterer // non-nil for a Redis Cluster: a lane and a breaker per master
	lanes      sync.Map  // *redis.Client (a master) -> *lane

	breakerFailures int
	breakerCooldown time.Duration
	now             func() int64 // ns on a monotonic clock, for the node breakers
}

// A clusterer is a *redis.ClusterClient, or a type that embeds one: it
// knows which master serves a key.
type clusterer interface {
	MasterForKey(ctx context.Context, key string) (*redis.Client, error)
}

// policyArgs caches a policy's formatted script arguments; a Limiter uses
// one policy, so formatting it on every call would be waste.
type policyArgs struct {
	p           limiter.Policy
	rate, burst any // strings, boxed once
}

// An Option configures a Store in New.
type Option func(*config) error

type config struct {
	prefix          string
	noCoalesce      bool
	breakerFailures int
	breakerCooldown time.Duration
}

// WithoutCoalescing makes every script call its own round trip, as before
// coalescing existed (see "Coalescing" in the package doc). Coalescing is
// on by default: it costs nothing measurable when calls come one at a
// time, and saves most of Redis's and the client's CPU when they overlap.
func WithoutCoalescing() Option {
	return func(c *config) error {
		c.noCoalesce = true
		return nil
	}
}

// WithNodeBreaker sets the circuit breaker each master of a Redis Cluster
// has of its own (see "Redis Cluster" in the package doc): failures
// consecutive failed calls on a master open its breaker for cooldown
// (default 5 and 1 s, store.Config's defaults for the Limiter's breaker).
// failures must be at least 1 and cooldown positive. Without a Cluster
// the option has no effect.
func WithNodeBreaker(failures int, cooldown time.Duration) Option {
	return func(c *config) error {
		if failures < 1 || cooldown <= 0 {
			return fmt.Errorf("%w: WithNodeBreaker(%d, %v): want failures >= 1 and a positive cooldown", ErrInvalidOption, failures, cooldown)
		}
		c.breakerFailures, c.breakerCooldown = failures, cooldown
		return nil
	}
}

// WithPrefix sets the namespace of the store's keys (default
// DefaultPrefix): a bucket lives at prefix + ":r2:" + key, or prefix +
// ":h2:" + the key's SHA-256 in hex (see New and Store.Key). Limiters that enforce
// different policies must use different prefixes. The prefix must be 1 to
// 128 bytes long.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if len(prefix) < 1 || len(prefix) > 128 {
			return fmt.Errorf("%w: WithPrefix: length %d is outside [1, 128]", ErrInvalidOption, len(prefix))
		}
		c.prefix = prefix
		return nil
	}
}

// New returns a Store that keeps buckets in the Redis behind client:
// a *redis.Client (single node, or Sentinel through NewFailoverClient), a
// *redis.ClusterClient or a *redis.Ring, as returned by
// redis.NewUniversalClient, or a type that embeds one of them.
//
// The client must have ContextTimeoutEnabled set: without it go-redis
// ignores context deadlines on the socket, and a Redis that stops
// answering would hold each request for the client's ReadTimeout (3 s by
// default) instead of the Limiter's store timeout. New reads it
// through the client's Options method (*redis.Options,
// *redis.ClusterOptions or *redis.RingOptions; a type embedding a go-redis
// client has it too), and returns an error wrapping ErrInvalidOption when
// it is not set, or when the client has no such method: a UniversalClient
// implemented some other way cannot show that it honours deadlines. Wrap
// such a client around a go-redis client and embed that client, so that
// its Options are the ones in force.
//
// Keys are stored as given when they are at most 64 bytes of ASCII
// letters, digits, '.', '-' and '_'; any other key (long, binary, with
// ':', '{' or '}') is stored as its SHA-256 digest under a different
// marker, so no client key can reach another namespace, another key's
// bucket or a Cluster hash tag.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrInvalidOption)
	}
	enabled, known := contextTimeouts(client)
	if !known {
		return nil, fmt.Errorf("%w: cannot read the options of a %T: pass a *redis.Client, *redis.ClusterClient "+
			"or *redis.Ring created with ContextTimeoutEnabled: true, or a type that embeds one", ErrInvalidOption, client)
	}
	if !enabled {
		return nil, fmt.Errorf("%w: the client's options must set ContextTimeoutEnabled: true, "+
			"or a slow Redis holds requests for its ReadTimeout instead of the store timeout", ErrInvalidOption)
	}
	c := config{prefix: DefaultPrefix, breakerFailures: 5, breakerCooldown: time.Second}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	r := &Store{client: client, prefix: c.prefix, noCoalesce: c.noCoalesce,
		breakerFailures: c.breakerFailures, breakerCooldown: c.breakerCooldown}
	r.main.s = r
	if cc, ok := client.(clusterer); ok {
		r.cluster, r.byKey = cc, true
	}
	if _, ok := client.(interface{ Options() *redis.RingOptions }); ok {
		r.byKey = true
	}
	epoch := time.Now()
	r.now = func() int64 { return int64(time.Since(epoch)) }
	return r, nil
}

// contextTimeouts reports whether client honours context deadlines, read
// from its options; known is false when client has none that say.
// Embedding promotes Options, so a wrapper around a go-redis client
// reports that client's.
func contextTimeouts(client redis.UniversalClient) (enabled, known bool) {
	switch c := client.(type) {
	case interface{ Options() *redis.Options }:
		o := c.Options()
		return o != nil && o.ContextTimeoutEnabled, o != nil
	case interface{ Options() *redis.ClusterOptions }:
		o := c.Options()
		return o != nil && o.ContextTimeoutEnabled, o != nil
	case interface{ Options() *redis.RingOptions }:
		o := c.Options()
		return o != nil && o.ContextTimeoutEnabled, o != nil
	}
	return false, false
}

// Take implements [store.Store] with one EVALSHA (an EVAL after Redis
// lost its script cache, for example on a restart). For an admission,
// Result.At is the Redis TIME, in microseconds, before which the
// bucket could not have refilled to Burst had the take not happened; for
// a denial, the time the script decided at.
func (r *Store) Take(ctx context.Context, key string, req store.Request) (store.Result, error) {
	if err := checkRequest(req); err != nil {
		return store.Result{}, err
	}
	v, err := r.eval(ctx, key, policyOf(req), req.Cost, req.Extra, 0)
	if err != nil {
		return store.Result{}, err
	}
	return parse(v, req)
}

// Refund implements [store.Store] with the same script, in its refund
// mode (extra -1): at is the Result.At of the Take that took the
// tokens, and the script gives back req.Cost less what the bucket has
// regained since then on Redis's clock, if anything is left.
func (r *Store) Refund(ctx context.Context, key string, req store.Request, at int64) error {
	req.Extra = 0
	if err := checkRequest(req); err != nil {
		return err
	}
	v, err := r.eval(ctx, key, policyOf(req), req.Cost, refundMode, at)
	if err != nil {
		return err
	}
	if len(v) != replyLen {
		return fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	return nil
}

// Peek implements [store.Store] with the same script, in its read-only
// mode (extra -2): the reply is the one Take would get for req.Cost with no
// Extra, computed the same way on Redis's clock, and the script writes
// nothing: a key Redis does not hold is not created, and a key it holds
// keeps its value and its TTL. req.Extra is ignored.
func (r *Store) Peek(ctx context.Context, key string, req store.Request) (store.Result, error) {
	req.Extra = 0
	if err := checkRequest(req); err != nil {
		return store.Result{}, err
	}
	v, err := r.eval(ctx, key, policyOf(req), req.Cost, peekMode, 0)
	if err != nil {
		return store.Result{}, err
	}
	return parse(v, req)
}

// The script's modes other than a take, in its extra argument.
const (
	refundMode = -1
	peekMode   = -2
)

// eval runs the script on key: EVALSHA, or EVAL when Redis lost its script
// cache, on the key's lane (which may send it with other calls in one
// pipeline). at is passed only to a refund (extra refundMode).
func (r *Store) eval(ctx context.Context, key string, p limiter.Policy, cost, extra int, at int64) ([]int64, error) {
	rkey := r.Key(key)
	ln, err := r.lane(ctx, rkey)
	if err != nil {
		return nil, fmt.Errorf("store: redis: %w", err)
	}
	probe := false
	if ln.brk != nil {
		var ok bool
		if ok, probe = ln.brk.admit(r.now); !ok {
			return nil, fmt.Errorf("store: redis node %s: %w (its breaker is open)", ln.addr, store.ErrUnavailable)
		}
	}
	pa := r.args(p)
	c := getCall(ctx)
	c.argv = [9]any{"evalsha", argSHA, argOneKey, nil, pa.rate, pa.burst, cost, extra}
	c.argc = 8
	if r.byKey {
		c.argv[3] = rkey // the client routes by it, reading it as a string
	} else {
		c.key = rkey
		c.argv[3] = &c.key // which go-redis writes as the string, without boxing a copy
	}
	if extra == refundMode {
		c.argv[8], c.argc = at, 9
	}
	v, err, owned := ln.do(c)
	if owned {
		putCall(c)
	}
	if ln.brk != nil {
		ln.brk.record(r.now, err, probe)
	}
	return v, err
}

// lane returns the lane of the Redis key rkey: the Store's only one, or
// with a Redis Cluster, the one of the master that serves rkey's slot.
func (r *Store) lane(ctx context.Context, rkey string) (*lane, error) {
	if r.cluster == nil {
		return &r.main, nil
	}
	node, err := r.cluster.MasterForKey(ctx, rkey)
	if err != nil {
		return nil, err
	}
	if ln, ok := r.lanes.Load(node); ok {
		return ln.(*lane), nil
	}
	ln := &lane{s: r, addr: node.Options().Addr, brk: newNodeBreaker(r.breakerFailures, int64(r.breakerCooldown))}
	actual, _ := r.lanes.LoadOrStore(node, ln)
	return actual.(*lane), nil
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

func policyOf(req store.Request) limiter.Policy {
	return limiter.Policy{Rate: req.Rate, Burst: req.Burst}
}

func checkRequest(req store.Request) error {
	p := policyOf(req)
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Rate == rate.Inf || req.Cost < 1 || req.Cost > p.Burst || req.Extra < 0 {
		return fmt.Errorf("store: invalid request: policy %v, cost %d, extra %d", p, req.Cost, req.Extra)
	}
	return nil
}

// args returns the formatted policy, from the cache when it is the last
// one used.
func (r *Store) args(p limiter.Policy) *policyArgs {
	if pa := r.policy.Load(); pa != nil && pa.p == p {
		return pa
	}
	pa := &policyArgs{
		p:     p,
		rate:  strconv.FormatFloat(float64(p.Rate), 'f', -1, 64), // shortest form that parses back exactly, no exponent (gopher-lua's tonumber rejects one)
		burst: strconv.Itoa(p.Burst),
	}
	r.policy.Store(pa)
	return pa
}

// replyLen is the length of the script's reply.
const replyLen = 7

// parse checks and converts the script's reply.
func parse(v []int64, req store.Request) (store.Result, error) {
	if len(v) != replyLen || v[0] < 0 || v[0] > 1 || v[4] < 0 || v[4] > int64(req.Extra) || v[1] < 0 || v[6] < 0 {
		return store.Result{}, fmt.Errorf("%w: %v", ErrBadReply, v)
	}
	return store.Result{
		Allowed:    v[0] == 1,
		Remaining:  int(min(v[1], int64(req.Burst))),
		RetryAfter: time.Duration(max(v[2], 0)),
		ResetAfter: time.Duration(max(v[3], 0)),
		Extra:      int(v[4]),
		Hold:       time.Duration(max(v[5], 0)),
		At:         v[6],
	}, nil
}

// Reset implements [store.Store]: it deletes key's bucket.
func (r *Store) Reset(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.Key(key)).Err(); err != nil {
		return fmt.Errorf("store: redis: %w", err)
	}
	return nil
}
