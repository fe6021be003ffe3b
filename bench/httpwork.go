package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"time"
)

// HTTPClients is how many clients (RemoteAddr) the HTTP workloads spread
// their requests over.
const HTTPClients = 1000

// An HTTPWorkload is one HTTP benchmark: every request goes through the
// handler from one of HTTPClients clients, each of which has sent one
// request before the timer starts; Want is the status every timed response
// of a middleware must have (a bare handler always answers 200).
type HTTPWorkload struct {
	Name   string
	Doc    string
	Config Config
	Want   int
}

// HTTPWorkloads returns the HTTP middleware workloads.
func HTTPWorkloads() []HTTPWorkload {
	return []HTTPWorkload{
		{Name: "HTTPAllowed", Doc: "every request admitted: 1,000 clients far below their rate", Config: Config{Rate: 1e6, Burst: 1_000_000}, Want: http.StatusOK},
		{Name: "HTTPDenied", Doc: "every request denied: 1,000 clients that spent their burst of 1 before the timer started", Config: Config{Rate: 1e-3, Burst: 1}, Want: http.StatusTooManyRequests},
	}
}

// HTTPRequests returns one GET request per client, each with its own
// RemoteAddr 203.0.x.y:port.
func HTTPRequests() []*http.Request {
	reqs := make([]*http.Request, HTTPClients)
	for i := range reqs {
		r := httptest.NewRequest(http.MethodGet, HTTPPath, nil)
		r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), uint16(40000+i)).String()
		reqs[i] = r
	}
	return reqs
}

// DiscardWriter is a ResponseWriter that keeps only its header map and
// status, the same for every implementation.
type DiscardWriter struct {
	H    http.Header
	Code int
}

// Header returns the response's header map.
func (w *DiscardWriter) Header() http.Header { return w.H }

// Write discards b.
func (w *DiscardWriter) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return len(b), nil
}

// WriteHeader records the status.
func (w *DiscardWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
}

// serve sends r through h with w reset, and returns the status.
func (w *DiscardWriter) serve(h http.Handler, r *http.Request) int {
	clear(w.H)
	w.Code = 0
	h.ServeHTTP(w, r)
	if w.Code == 0 {
		return http.StatusOK
	}
	return w.Code
}

// statusTally counts responses by status across a run's goroutines.
type statusTally struct{ ok, limited, other, goroutines atomic.Int64 }

// PrepareHTTP builds im for wl, sends every client's first request (which
// must be admitted), and returns the loop to time and the check of its
// responses, as Workload.Prepare does.
func PrepareHTTP(im HTTPImpl, wl HTTPWorkload, ops int) (loop func(Nexter), check func() (Metrics, error), closeFn func(), err error) {
	h, closeFn, err := im.New(wl.Config)
	if err != nil {
		return nil, nil, nil, err
	}
	reqs := HTTPRequests()
	w := &DiscardWriter{H: http.Header{}}
	for i, r := range reqs {
		if code := w.serve(h, r); code != http.StatusOK {
			closeFn()
			return nil, nil, nil, fmt.Errorf("%s: first request of client %d answered %d, want 200", im.Name, i, code)
		}
	}
	want := wl.Want
	if im.Bare == "" {
		want = http.StatusOK
	}
	var t statusTally
	var next atomic.Int64
	loop = func(pb Nexter) {
		w := &DiscardWriter{H: http.Header{}}
		i := int(next.Add(1)) * 337 // goroutines start at different clients
		var ok, limited, other int64
		for ; pb.Next(); i++ {
			switch w.serve(h, reqs[i%HTTPClients]) {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
			default:
				other++
			}
		}
		t.ok.Add(ok)
		t.limited.Add(limited)
		t.other.Add(other)
		t.goroutines.Add(1)
	}
	check = func() (Metrics, error) {
		ok, limited, other := t.ok.Load(), t.limited.Load(), t.other.Load()
		if got := ok + limited + other; got != int64(ops) {
			return nil, fmt.Errorf("%s/%s: %d responses, want %d", wl.Name, im.Name, got, ops)
		}
		if (want == http.StatusOK && ok != int64(ops)) || (want == http.StatusTooManyRequests && limited != int64(ops)) {
			return nil, fmt.Errorf("%s/%s: %d × 200, %d × 429, %d other in %d requests, want all %d", wl.Name, im.Name, ok, limited, other, ops, want)
		}
		return Metrics{"ok/op": float64(ok) / float64(ops)}, nil
	}
	return loop, check, closeFn, nil
}

// SpoofConfig is the policy of the spoofing scenario: a burst of 10 and a
// rate of one request per hour, so the most one client may get in a short
// run is its burst.
var SpoofConfig = Config{Rate: 1.0 / 3600, Burst: 10}

// SpoofScenario names the spoofing scenario's results in TestCorrectness's
// output.
const SpoofScenario = "header spoofing"

// SpoofRequests is how many requests the spoofing client sends.
const SpoofRequests = 1000

// Spoof sends n requests from one TCP peer through im's middleware with
// its default identity settings, each with a new address in
// X-Forwarded-For, X-Real-IP, True-Client-IP and Forwarded, and returns how
// many were admitted against the policy maximum, Burst + Rate×T.
func Spoof(im HTTPImpl, n int) (Outcome, error) {
	c := SpoofConfig
	h, closeFn, err := im.New(c)
	if err != nil {
		return Outcome{}, err
	}
	defer closeFn()
	w := &DiscardWriter{H: http.Header{}}
	t0 := time.Now()
	admitted := 0
	for i := range n {
		r := httptest.NewRequest(http.MethodGet, HTTPPath, nil)
		r.RemoteAddr = "198.51.100.7:51234"
		fake := IPv4Key(i + 1<<20)
		r.Header.Set("X-Forwarded-For", fake)
		r.Header.Set("X-Real-IP", fake)
		r.Header.Set("True-Client-IP", fake)
		r.Header.Set("Forwarded", "for="+fake)
		switch code := w.serve(h, r); code {
		case http.StatusOK:
			admitted++
		case http.StatusTooManyRequests:
		default:
			return Outcome{}, fmt.Errorf("%s: spoofed request %d answered %d", im.Name, i, code)
		}
	}
	return outcome(c, admitted, time.Since(t0)), nil
}
