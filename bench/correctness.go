package bench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// An Outcome is what one implementation admitted for one client in one
// scenario, against the most the policy allows: Burst + Rate×Elapsed.
type Outcome struct {
	Admitted int
	Max      int
	Elapsed  time.Duration
}

// Over is how many requests were admitted beyond the policy's maximum
// (negative: that many fewer than the maximum).
func (o Outcome) Over() int { return o.Admitted - o.Max }

// A Scenario is one row of the correctness table. Run drives one
// implementation for about d of real time (the scenarios measure real
// contention and the peers' own clocks and cleanup goroutines, so they
// cannot run on a fake clock).
type Scenario struct {
	Name   string
	Doc    string
	Config Config
	// FakeClock scenarios run inside a testing/synctest bubble, where
	// time.Sleep advances a fake clock that every implementation reads:
	// they model hours in no time and give the same result every run.
	FakeClock bool
	Run       func(im Impl, c Config, d time.Duration) (Outcome, error)
}

// victim is the client whose admissions the scenarios count.
const victim = "198.51.100.1"

// Scenarios returns the correctness scenarios.
func Scenarios() []Scenario {
	return []Scenario{
		{
			Name:   "contention",
			Doc:    "64 goroutines on one key for the whole run",
			Config: Config{Rate: 100, Burst: 100},
			Run:    runContention,
		},
		{
			Name: "cleanup",
			Doc: "a client drains its burst, pauses for a quarter of the run while cleanup runs every 10 ms " +
				"and another client keeps requesting, then asks for a full burst again",
			Config: Config{Rate: 50, Burst: 100, Cleanup: 10 * time.Millisecond},
			Run:    runCleanup,
		},
		{
			Name: "cleanup, defaults",
			Doc: "on a fake clock, with every implementation's default cleanup: a client drains its burst, " +
				"is idle for 4 minutes while another client requests once a second, then asks for a full burst again",
			Config:    Config{Rate: 100.0 / 3600, Burst: 100, Bubble: true},
			FakeClock: true,
			Run:       runCleanupDefaults,
		},
		{
			Name:   "key spray",
			Doc:    "a client drains its burst, 20,000 new keys send one request each against a cap of 1,000 keys, then the client asks for a full burst again",
			Config: Config{Rate: 50, Burst: 100, MaxKeys: 1000},
			Run:    runKeySpray,
		},
	}
}

func runContention(im Impl, c Config, d time.Duration) (Outcome, error) {
	l, err := im.New(c)
	if err != nil {
		return Outcome{}, err
	}
	defer l.Close()
	const goroutines = 64
	var admitted, denied atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range goroutines {
		wg.Go(func() {
			<-start
			var a, n int64
			for t0 := time.Now(); time.Since(t0) < d; {
				if l.Allow(victim) {
					a++
				} else {
					n++
				}
			}
			admitted.Add(a)
			denied.Add(n)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	if denied.Load() == 0 {
		return Outcome{}, fmt.Errorf("%s: contention: nothing denied: the limiter is not limiting", im.Name)
	}
	return outcome(c, int(admitted.Load()), elapsed), nil
}

func outcome(c Config, admitted int, elapsed time.Duration) Outcome {
	return Outcome{Admitted: admitted, Max: c.Max(elapsed), Elapsed: elapsed}
}

// drain sends 2×Burst requests from victim and returns how many were
// admitted; it fails if none was denied.
func drain(l Limiter, c Config, name string) (int, error) {
	admitted := 0
	for range 2 * c.Burst {
		if l.Allow(victim) {
			admitted++
		}
	}
	if admitted == 2*c.Burst {
		return 0, fmt.Errorf("%s: %d requests in a row admitted with burst %d: the limiter is not limiting", name, admitted, c.Burst)
	}
	return admitted, nil
}

// burst sends Burst requests from victim and returns how many were admitted.
func burst(l Limiter, c Config) int {
	admitted := 0
	for range c.Burst {
		if l.Allow(victim) {
			admitted++
		}
	}
	return admitted
}

func runCleanup(im Impl, c Config, d time.Duration) (Outcome, error) {
	l, err := im.New(c)
	if err != nil {
		return Outcome{}, err
	}
	defer l.Close()
	t0 := time.Now()
	admitted, err := drain(l, c, im.Name)
	if err != nil {
		return Outcome{}, err
	}
	// Pause, while another client's requests give request-driven cleanup
	// (echo's) the chance to run.
	pause := max(d/4, 50*time.Millisecond)
	for time.Since(t0) < pause {
		l.Allow("192.0.2.1")
		time.Sleep(c.Cleanup / 2)
	}
	admitted += burst(l, c)
	return outcome(c, admitted, time.Since(t0)), nil
}

func runKeySpray(im Impl, c Config, _ time.Duration) (Outcome, error) {
	l, err := im.New(c)
	if err != nil {
		return Outcome{}, err
	}
	defer l.Close()
	t0 := time.Now()
	admitted, err := drain(l, c, im.Name)
	if err != nil {
		return Outcome{}, err
	}
	for i := range 20 * c.MaxKeys {
		l.Allow(IPv4Key(i))
	}
	admitted += burst(l, c)
	return outcome(c, admitted, time.Since(t0)), nil
}

// runCleanupDefaults must run in a synctest bubble: it sleeps 4 minutes.
func runCleanupDefaults(im Impl, c Config, _ time.Duration) (Outcome, error) {
	l, err := im.New(c)
	if err != nil {
		return Outcome{}, err
	}
	defer l.Close()
	t0 := time.Now()
	admitted, err := drain(l, c, im.Name)
	if err != nil {
		return Outcome{}, err
	}
	for range 240 {
		time.Sleep(time.Second)
		l.Allow("192.0.2.1")
	}
	admitted += burst(l, c)
	return outcome(c, admitted, time.Since(t0)), nil
}
