package nethttpmw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// UnidentifiedKey is the key shared by every request whose client address
// cannot be determined: a RemoteAddr that is not an IP address (a Unix
// socket, a broken test fixture). Such requests are limited together, as
// one client; they are never unlimited. No IP key can equal it.
const UnidentifiedKey = "unidentified"

// ErrUnidentified is returned by Identity.ClientAddr when the peer address
// is not an IP address, and wraps the error of a key function (see
// WithKeyFunc) that could not identify the client.
var ErrUnidentified = errors.New("nethttpmw: client not identified")

// DefaultIPv6Prefix is the prefix length by which IPv6 clients are grouped
// unless WithIPv6Prefix says otherwise: a /64 is what one subscriber or one
// host is typically given, and its 2^64 addresses are free to rotate.
const DefaultIPv6Prefix = 64

// An Identity turns a request into the client's address and its limiter
// key. The default is secure: the key is the TCP peer (RemoteAddr), and
// forwarding headers are ignored unless the peer is a trusted proxy (see
// WithTrustedProxies). An Identity is safe for concurrent use.
//
// Keys are "192.0.2.1" for IPv4 (IPv4-mapped IPv6 included) and
// "2001:db8:1:2::/64" for IPv6 grouped by a prefix, or the bare address
// when the prefix is /128.
type Identity struct {
	trusted []netip.Prefix
	header  string // canonical header key read from trusted proxies
	fwd     bool   // header has RFC 7239 syntax
	v6bits  int
	cache   keyCache    // address -> key
	peers   remoteCache // RemoteAddr of an untrusted peer -> key
}

// NewIdentity returns the Identity that New would use with opts. Only the
// identity options (WithTrustedProxies, WithProxyHeader, WithIPv6Prefix)
// matter here; the others are validated and otherwise ignored. Use it to
// compose keys in a key function, or in a gateway that is not net/http
// middleware.
func NewIdentity(opts ...Option) (*Identity, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newIdentity(&c), nil
}

func newIdentity(c *config) *Identity {
	return &Identity{
		trusted: c.trusted,
		header:  http.CanonicalHeaderKey(string(c.header)),
		fwd:     c.header == HeaderForwarded,
		v6bits:  c.v6bits,
		cache:   keyCache{seed: rand.Uint64()},
		peers:   remoteCache{seed: maphash.MakeSeed()},
	}
}

// ClientAddr returns the client's address for a request from remoteAddr
// (an http.Request's RemoteAddr) with header h. It is the peer, unless the
// peer is a trusted proxy: then the hops of the configured forwarding
// header are walked from the right, and the first hop that is not trusted
// is the client. The walk also stops at a hop that is not an address
// (an obfuscated identifier, "unknown", garbage) and then returns the
// trusted hop that reported it, so such clients share that proxy's key; if
// every hop is trusted, the leftmost is the client. At most 32 hops are
// examined.
//
// The address has no zone and IPv4-mapped addresses are returned as IPv4.
// The error is ErrUnidentified if remoteAddr is not an IP address.
func (id *Identity) ClientAddr(remoteAddr string, h http.Header) (netip.Addr, error) {
	a, _, err := id.clientAddr(remoteAddr, h)
	return a, err
}

// clientAddr is ClientAddr, also reporting whether the answer is the peer
// because the peer is not trusted (and so depends on remoteAddr alone).
func (id *Identity) clientAddr(remoteAddr string, h http.Header) (a netip.Addr, peerOnly bool, err error) {
	peer, ok := parseRemoteAddr(remoteAddr)
	if !ok {
		return netip.Addr{}, false, ErrUnidentified
	}
	if !id.isTrusted(peer) {
		return peer, true, nil
	}
	s := newHopScanner(h[id.header], id.fwd)
	client := peer
	for range maxHops {
		a, st := s.next()
		if st != hopAddr {
			return client, false, nil
		}
		client = a
		if !id.isTrusted(a) {
			return a, false, nil
		}
	}
	return client, false, nil
}

// Key returns the limiter key for r's client: the key of ClientAddr, or
// UnidentifiedKey when the client address cannot be determined. For a
// returning client it does not allocate.
func (id *Identity) Key(r *http.Request) string {
	if k, ok := id.peers.load(r.RemoteAddr); ok {
		return k // an untrusted peer seen before: no parsing at all
	}
	a, peerOnly, err := id.clientAddr(r.RemoteAddr, r.Header)
	if err != nil {
		return UnidentifiedKey
	}
	k := id.AddrKey(a)
	if peerOnly {
		id.peers.store(r.RemoteAddr, k)
	}
	return k
}

// AddrKey returns the key for client address a, grouping IPv6 addresses by
// the configured prefix. a should come from ClientAddr; other addresses are
// normalised the same way first.
func (id *Identity) AddrKey(a netip.Addr) string {
	a = normalize(a)
	if a.Is6() && id.v6bits < 128 {
		a = netip.PrefixFrom(a, id.v6bits).Masked().Addr()
	}
	return id.cache.key(a, id.v6bits)
}

func (id *Identity) isTrusted(a netip.Addr) bool {
	for _, p := range id.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// normalizePrefix checks a trusted prefix and puts it in the form that
// Contains needs for normalised addresses.
func normalizePrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, fmt.Errorf("%w: invalid trusted prefix %v", ErrInvalidOption, p)
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
	}
	return netip.PrefixFrom(a, p.Bits()).Masked(), nil
}

// keyCache remembers the key strings of recently seen addresses, so a
// returning client's key costs a hash and a compare instead of two
// allocations. It is a two-way set-associative cache with a fixed number of
// slots: its memory is bounded (64 KiB of pointers plus the entries)
// whatever the key spray, and a collision only costs the allocations the
// cache would have saved. The hash is seeded per Identity, so a client
// cannot aim its addresses at one set.
type keyCache struct {
	seed  uint64
	slots [cacheSlots]atomic.Pointer[keyEntry]
}

const cacheBits = 13
const cacheSlots = 1 << cacheBits

type keyEntry struct {
	addr netip.Addr
	key  string
}

// mix64 is the finaliser of MurmurHash3: every input bit affects every
// output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (c *keyCache) key(a netip.Addr, v6bits int) string {
	b := a.As16()
	h := mix64(mix64(binary.LittleEndian.Uint64(b[:8])^c.seed) ^ binary.LittleEndian.Uint64(b[8:]))
	set := h >> (64 - cacheBits) &^ 1
	s0, s1 := &c.slots[set], &c.slots[set|1]
	if e := s0.Load(); e != nil && e.addr == a {
		return e.key
	}
	if e := s1.Load(); e != nil && e.addr == a {
		return e.key
	}
	var buf [64]byte
	k := a.AppendTo(buf[:0])
	if a.Is6() && v6bits < 128 {
		k = append(k, '/')
		k = strconv.AppendInt(k, int64(v6bits), 10)
	}
	e := &keyEntry{addr: a, key: string(k)}
	switch {
	case s0.Load() == nil:
		s1 = s0
	case s1.Load() == nil:
	case h&1 == 0: // both taken: evict one at random
		s1 = s0
	}
	s1.Store(e)
	return e.key
}

// remoteCache maps the RemoteAddr string of an untrusted peer ("IP:port",
// the same string for every request on one connection) to its key, so a
// client on a kept-alive connection costs one string hash and compare
// instead of an address parse. Only untrusted peers are stored: their key
// depends on RemoteAddr alone. Same shape and bounds as keyCache; the
// strings stored are at most maxHopLen bytes (longer ones do not parse).
type remoteCache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[remoteEntry]
}

type remoteEntry struct {
	remote, key string
}

func (c *remoteCache) set(remote string) (h uint64, s0, s1 *atomic.Pointer[remoteEntry]) {
	h = maphash.String(c.seed, remote)
	set := h >> (64 - cacheBits) &^ 1
	return h, &c.slots[set], &c.slots[set|1]
}

func (c *remoteCache) load(remote string) (string, bool) {
	_, s0, s1 := c.set(remote)
	if e := s0.Load(); e != nil && e.remote == remote {
		return e.key, true
	}
	if e := s1.Load(); e != nil && e.remote == remote {
		return e.key, true
	}
	return "", false
}

func (c *remoteCache) store(remote, key string) {
	h, s0, s1 := c.set(remote)
	switch {
	case s0.Load() == nil:
		s1 = s0
	case s1.Load() == nil:
	case h&1 == 0:
		s1 = s0
	}
	s1.Store(&remoteEntry{remote: remote, key: key})
}
