package limiter

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults for the options below.
const (
	// DefaultMaxKeys caps the tracked keys at 2^20. At the ~154 bytes a
	// tracked key costs (TestMemoryPerKey), a full table holds about
	// 154 MiB.
	DefaultMaxKeys = 1 << 20
	// DefaultSweepInterval is how often idle buckets are retired.
	DefaultSweepInterval = 30 * time.Second
	// MinSweepInterval is the shortest interval WithSweepInterval accepts.
	MinSweepInterval = time.Millisecond
)

// ErrInvalidOption is wrapped by every error New returns for a bad Option.
var ErrInvalidOption = errors.New("limiter: invalid option")

// An Option configures a Limiter in New.
type Option func(*config) error

type config struct {
	maxKeys       int
	sweepInterval time.Duration
	observe       func(context.Context, Event)
	remote        remoteConfig // store.go
}

func defaultConfig() config {
	return config{maxKeys: DefaultMaxKeys, sweepInterval: DefaultSweepInterval, remote: defaultRemoteConfig()}
}

// WithMaxKeys caps the number of keys tracked at once at n (default
// DefaultMaxKeys). When the table is full, a new key takes the slot of a
// bucket that has refilled to Burst (retiring it loses nothing); if it
// finds none, it shares one overflow bucket with the limiter's Policy with
// every other such key, and the sweeper is asked for an early pass. Tracked
// keys are unaffected. n must be positive.
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
// refilled to Burst (default DefaultSweepInterval). Sweeping never changes a
// decision; the interval only trades memory held by idle keys against the
// CPU of a pass. When the table is full, extra passes run on demand, spaced
// to use about a tenth of a core (see package sweeper). d must be at least
// MinSweepInterval.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < MinSweepInterval {
			return fmt.Errorf("%w: WithSweepInterval(%v): must be at least %v", ErrInvalidOption, d, MinSweepInterval)
		}
		c.sweepInterval = d
		return nil
	}
}
