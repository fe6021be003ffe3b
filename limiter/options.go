package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const (
	defaultMaxKeys       = 1 << 17
	cellsPerKey          = 128     // cells per key of WithMaxKeys: 1 KiB beside a ~154-byte bucket
	maxCells             = 1 << 24 // 128 MiB: the cells of the default table, and the most any table gets
	defaultCellRows      = 2       // cells per key (see cells_measure_test.go for the choice)
	defaultSweepInterval = 30 * time.Second
	minSweepInterval     = time.Millisecond
)

// ErrInvalidOption is wrapped by every error New returns for a bad Option.
var ErrInvalidOption = errors.New("limiter: invalid option")

// An Option configures a Limiter in New.
type Option func(*config) error

type config struct {
	maxKeys       int
	cells         int // cells in all; 0: cellCount's default (tests set it to force collisions)
	cellRows      int // cells per key
	sweepInterval time.Duration
	observe       func(context.Context, Event)
	remote        remoteConfig // store.go
}

func defaultConfig() config {
	return config{maxKeys: defaultMaxKeys, cellRows: defaultCellRows, sweepInterval: defaultSweepInterval}
}

// cellCount is how many cells a Limiter with c gets: cellsPerKey for each
// key of the table's cap, at most maxCells.
func (c *config) cellCount() int {
	if c.cells > 0 {
		return c.cells
	}
	return min(c.maxKeys, maxCells/cellsPerKey) * cellsPerKey
}

// WithMaxKeys caps the number of keys tracked at once at n, and sizes the
// cells that decide the keys beyond it: 128 per key of n, at most 2^24
// (default n = 2^17: a full table of ~154-byte buckets holds about 19 MiB,
// and the cells take 128 MiB, allocated only when the table first fills;
// about 147 MiB in all). When the table is full, a new key takes the slot
// of a bucket that has refilled to Burst (retiring it loses nothing); if
// it finds none, it is decided on its cells (two 8-byte states chosen by a
// seeded hash of the key, never less restrictive than its own bucket), and
// the sweeper is asked for an early pass. Tracked keys are unaffected.
//
// The table buys exact decisions for the clients active at once; the cells
// buy resistance to lockout: getting first-time clients under their rate
// denied takes a key spray of about the cells' count × Rate requests a
// second (2^24 × Rate at the default, 16 times what a table of 2^20 keys
// alone cost the attacker). Above n = 2^17 the cells stay at 2^24, so
// memory is about n × 154 bytes + 128 MiB. n must be positive.
func WithMaxKeys(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxKeys(%d): must be positive", ErrInvalidOption, n)
		}
		c.maxKeys = n
		return nil
	}
}

// WithSweepInterval sets how often the sweeper retires buckets that have
// refilled to Burst (default 30 s). Sweeping never changes a
// decision; the interval only trades memory held by idle keys against the
// CPU of a pass. When the table is full, extra passes run on demand, spaced
// to use about a tenth of a core (see package sweeper). d must be at least
// 1 ms.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < minSweepInterval {
			return fmt.Errorf("%w: WithSweepInterval(%v): must be at least %v", ErrInvalidOption, d, minSweepInterval)
		}
		c.sweepInterval = d
		return nil
	}
}
