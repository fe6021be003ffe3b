package bench

import (
	"sync"
	"testing"
)

func TestIPv4KeyDistinct(t *testing.T) {
	if got, want := IPv4Key(0), "1.0.0.0"; got != want {
		t.Fatalf("IPv4Key(0) = %q, want %q", got, want)
	}
	if got, want := IPv4Key(258), "1.0.1.2"; got != want {
		t.Fatalf("IPv4Key(258) = %q, want %q", got, want)
	}
	seen := make(map[string]int)
	for _, base := range []int{0, 1<<24 - 1<<16, 10_000_000 - 1<<15} {
		for i := base; i < base+1<<16; i++ {
			k := IPv4Key(i)
			if j, dup := seen[k]; dup && j != i {
				t.Fatalf("IPv4Key(%d) = IPv4Key(%d) = %q", i, j, k)
			}
			seen[k] = i
		}
	}
}

// TestSmoke runs every workload and measurement on every implementation at
// a small size, with the same checks as the benchmarks.
func TestSmoke(t *testing.T) {
	for _, im := range Impls() {
		t.Run(im.Name, func(t *testing.T) {
			t.Run("limits", func(t *testing.T) { testLimits(t, im) })
			for _, w := range Workloads() {
				t.Run(w.Name, func(t *testing.T) { smokeWorkload(t, im, w) })
			}
			t.Run("BytesPerKey", func(t *testing.T) {
				v, err := BytesPerKey(im, MemoryConfig, 10_000)
				if err != nil {
					t.Fatal(err)
				}
				if v <= 0 || v > 10_000 {
					t.Fatalf("BytesPerKey = %.0f, want in (0, 10000]", v)
				}
			})
			t.Run("Spray", func(t *testing.T) {
				if _, _, err := Spray(im, MemoryConfig, 10_000); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// testLimits checks the adapter's configuration: a burst of Burst, then a
// denial, per key.
func testLimits(t *testing.T, im Impl) {
	c := Config{Rate: 1, Burst: 10} // a 10 s window: nothing refills during the test
	l, err := im.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, key := range []string{"a", "b"} {
		for i := range c.Burst {
			if !l.Allow(key) {
				t.Fatalf("Allow(%q) #%d = false, want true (burst %d)", key, i+1, c.Burst)
			}
		}
		if l.Allow(key) {
			t.Fatalf("Allow(%q) #%d = true, want false (burst %d)", key, c.Burst+1, c.Burst)
		}
	}
}

func smokeWorkload(t *testing.T, im Impl, w Workload) {
	l, err := im.New(w.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ops, goroutines := 1000, 1
	switch {
	case w.Name == "ManyKeysParallel":
		ops, goroutines = ManyKeys, 4 // requires all but the tails of 4 chunks
	case w.Parallel:
		goroutines = 4
	}
	loop, check, err := w.Prepare(l, ops)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			n := Countdown(ops / goroutines)
			loop(&n)
		})
	}
	wg.Wait()
	if _, err := check(0); err != nil {
		t.Fatal(err)
	}
}

func TestConfigString(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Standard, "1000/s, burst 100"},
		{MemoryConfig, "100/h, burst 100"},
		{Config{Rate: 0.5, Burst: 1}, "1800/h, burst 1"},
		{Config{Rate: 1.5, Burst: 2}, "1.5/s, burst 2"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}
