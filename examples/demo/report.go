package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// reporter prints the live table and the verdicts.
type reporter struct {
	out       io.Writer
	cfg       config
	clients   []*client
	instances []*instance
	start     time.Time
	tty       bool // redraw the table in place
	lines     int  // lines of the last table, to redraw over
	peakKeys  int
	peakHeap  uint64
	cells     uint64 // decisions on the cells at the last table
}

func newReporter(out io.Writer, cfg config, clients []*client, instances []*instance) *reporter {
	r := &reporter{out: out, cfg: cfg, clients: clients, instances: instances, start: time.Now()}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			r.tty = true
		}
	}
	return r
}

// live prints the table every second until ctx is done, and once more then.
func (r *reporter) live(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.table() // the final numbers
			return
		case <-tick.C:
			if ctx.Err() == nil { // else the end of the run: print once, above
				r.table()
			}
		}
	}
}

func (r *reporter) table() {
	keys, trips, denyHits, cells := 0, uint64(0), uint64(0), uint64(0)
	for _, in := range r.instances {
		s := in.l.Stats()
		keys = max(keys, s.Keys, s.Store.CachedKeys) // with Redis, the buckets live there; this is the local cache
		trips += s.Store.RoundTrips
		denyHits += s.Store.DenyCacheHits
		cells += s.Overflowed
	}
	newCells := cells - r.cells
	r.cells = cells
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	r.peakKeys, r.peakHeap = max(r.peakKeys, keys), max(r.peakHeap, m.HeapAlloc)

	var b strings.Builder
	elapsed := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(&b, "t=%-4v %-8s %-32s %7s %9s %7s %11s\n", elapsed, "client", "behaviour", "sent", "admitted", "denied", "admitted/s")
	for _, c := range r.clients {
		rate := float64(c.admitted.Load()) / max(time.Since(r.start).Seconds(), 1e-9)
		fmt.Fprintf(&b, "       %-8s %-32s %7d %9d %7d %11.1f\n", c.name, c.behavior, c.sent.Load(), c.admitted.Load(), c.denied.Load(), rate)
	}
	fmt.Fprintf(&b, "       policy: %.4g/s per client; keys tracked: %d (cap %d per instance); heap: %.1f MiB\n",
		r.cfg.rate, keys, r.cfg.maxKeys, float64(m.HeapAlloc)/(1<<20))
	fmt.Fprintf(&b, "       decided on the cells (table full, nothing retirable): %d requests, %d since the last table\n", cells, newCells)
	if r.cfg.instances > 1 {
		fmt.Fprintf(&b, "       Redis round trips: %d; denials answered from the local deny cache: %d\n", trips, denyHits)
	}
	b.WriteString("\n")
	if r.tty && r.lines > 0 {
		fmt.Fprintf(r.out, "\x1b[%dA", r.lines) // back over the previous table
	}
	r.lines = strings.Count(b.String(), "\n")
	io.WriteString(r.out, b.String())
}

// verdicts prints one line per client and reports whether all passed.
func (r *reporter) verdicts() bool {
	ok := true
	say := func(pass bool, format string, args ...any) {
		mark := "PASS"
		if !pass {
			mark, ok = "FAIL", false
		}
		fmt.Fprintf(r.out, "%s  "+format+"\n", append([]any{mark}, args...)...)
	}
	p := r.cfg.policy()
	for _, c := range r.clients {
		sent, admitted, denied, failed := c.sent.Load(), c.admitted.Load(), c.denied.Load(), c.failed.Load()
		if failed > 0 {
			say(false, "%-8s %d requests failed (neither 200 nor 429)", c.name, failed)
			continue
		}
		span := time.Duration(c.last.Load() - c.first.Load())
		bound := float64(p.Burst) + float64(p.Rate)*span.Seconds()
		switch {
		case c.name == "polite" || c.name == "newcomer":
			say(admitted == sent && sent > 0, "%-8s under its limit, never denied: %d of %d admitted, while %d requests were decided on the cells",
				c.name, admitted, sent, c.cellsAfter.Load()-c.cellsBefore.Load())
		case c.bounded:
			say(float64(admitted) <= bound && float64(admitted) >= 0.9*bound && denied > 0,
				"%-8s held to Burst + Rate×T = %d + %.4g/s × %.1fs = %.0f: %d admitted, %d denied",
				c.name, p.Burst, float64(p.Rate), span.Seconds(), bound, admitted, denied)
		default:
			addrs, _ := r.cfg.spray()
			say(r.peakKeys <= r.cfg.maxKeys,
				"%-8s %d addresses, each a new client: tracked keys peaked at %d (cap %d), heap at %.1f MiB; %d requests found the table full, nothing retirable, and were decided on the cells",
				c.name, min(sent, int64(addrs)), r.peakKeys, r.cfg.maxKeys, float64(r.peakHeap)/(1<<20), c.cellsAfter.Load())
		}
	}
	return ok
}
