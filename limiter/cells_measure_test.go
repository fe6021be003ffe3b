package limiter

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// A lockoutRun is one measured key spray: a Limiter with a table of table
// keys and cells cells in rows rows, sprayed with fresh keys at rate
// requests a second for dur, while first-time clients (one request each)
// and returning clients (at half their rate) use it. It counts the
// denials both kinds get over the second half of the spray, when the
// cells are in their steady state.
type lockoutRun struct {
	p                  Policy
	table, cells, rows int
	rate               float64 // spray requests per second
	dur                time.Duration
}

type lockoutResult struct {
	firstDenied, firstTotal   int // first-time clients' requests
	honestDenied, honestTotal int // returning clients' requests, at half their rate
}

func (r lockoutRun) measure(t *testing.T) (res lockoutResult) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, r.p, WithMaxKeys(r.table), withCells(r.cells, r.rows), WithSweepInterval(time.Second))
		const honest = 50
		tick := 100 * time.Millisecond
		every := time.Duration(2 / float64(r.p.Rate) * float64(time.Second)) // a returning client's pause: half its rate
		var sprayed, carry float64
		var next [honest]time.Duration
		for i := range next {
			next[i] = every * time.Duration(i) / honest
		}
		for at := time.Duration(0); at < r.dur; at += tick {
			carry += r.rate * tick.Seconds()
			for ; carry >= 1; carry-- {
				l.Allow(ctx, "s"+strconv.Itoa(int(sprayed)))
				sprayed++
			}
			steady := at >= r.dur/2
			for i := range next {
				if at < next[i] {
					continue
				}
				next[i] += every
				d, _ := l.Allow(ctx, "honest-"+strconv.Itoa(i))
				if steady {
					res.honestTotal++
					if !d.Allowed {
						res.honestDenied++
					}
				}
			}
			if steady && int(at/tick)%10 == 0 { // a first-time client each second
				res.firstTotal++
				if d, _ := l.Allow(ctx, "first-"+strconv.Itoa(int(at/tick))); !d.Allowed {
					res.firstDenied++
				}
			}
			time.Sleep(tick)
		}
	})
	return res
}

// TestLockoutRate measures, at a reduced scale, what a key spray must send
// to get first-time clients under their rate denied, and how many
// requests of returning clients at half their rate are denied by
// collisions in the cells: for PerMinute(5) with a table of 100 keys and
// the cells a table of that size gets (12,800), against a single cell
// shared by every untracked key (the overflow bucket before the cells).
//
// The spray rate is given in units of C × Rate (C the cells); today's
// lockout, (table + 1) × Rate, is 101 × Rate here. By default it checks
// two points; FLOODGATE_LOCKOUT=1 prints the whole grid, for rows 1, 2 and
// 4 and for PerHour(100) as well (the README's table).
func TestLockoutRate(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("sprays up to a million requests: not under -short or -race")
	}
	base := lockoutRun{p: PerMinute(5), table: 100, cells: 100 * cellsPerKey, rows: defaultCellRows, dur: 10 * time.Minute}
	cr := float64(base.cells) * float64(base.p.Rate) // C × Rate
	// One cell at 2 × today's lockout rate: nearly every first-time client
	// denied (the odd one finds the token that refilled since the last burst).
	one := base
	one.cells, one.rows, one.rate = 1, 1, 2*float64(base.table+1)*float64(base.p.Rate)
	if r := one.measure(t); r.firstDenied*10 < r.firstTotal*9 {
		t.Errorf("one shared cell at %.0f/s: %d of %d first-time clients denied, want at least 90%%", one.rate, r.firstDenied, r.firstTotal)
	}
	// The cells at a quarter of C × Rate, 32 times today's lockout rate:
	// none denied.
	quarter := base
	quarter.rate = cr / 4
	if r := quarter.measure(t); r.firstDenied != 0 {
		t.Errorf("cells at %.0f/s: %d of %d first-time clients denied, want none", quarter.rate, r.firstDenied, r.firstTotal)
	}
	if os.Getenv("FLOODGATE_LOCKOUT") == "" {
		return
	}
	for _, p := range []struct {
		p     Policy
		table int
		dur   time.Duration
	}{{PerMinute(5), 100, 10 * time.Minute}, {PerHour(100), 20, 4 * time.Hour}} {
		for _, rows := range []int{1, 2, 4} {
			for _, m := range []float64{0.25, 0.5, 1, 1.5, 2, 4} {
				run := lockoutRun{p: p.p, table: p.table, cells: p.table * cellsPerKey, rows: rows, dur: p.dur}
				run.rate = m * float64(run.cells) * float64(p.p.Rate)
				r := run.measure(t)
				t.Logf("%-22v table %4d cells %6d rows %d spray %5.2f×C×Rate = %7.1f/s (%5.1f× today's lockout): first-time denied %5.1f%%, returning at half rate denied %5.2f%%",
					fmt.Sprintf("%+v", p.p), run.table, run.cells, rows, m, run.rate, run.rate/(float64(run.table+1)*float64(p.p.Rate)),
					100*float64(r.firstDenied)/float64(r.firstTotal), 100*float64(r.honestDenied)/float64(max(r.honestTotal, 1)))
			}
		}
	}
}
