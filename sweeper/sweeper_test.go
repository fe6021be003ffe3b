package sweeper_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/sweeper"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// entry is a test value: idle entries may be retired; retired ones are
// marked so the test can check nothing live was removed.
type entry struct {
	mu      sync.Mutex
	idle    bool
	retired bool
}

func retire(e *entry) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.idle {
		e.retired = true
	}
	return e.retired
}

// table is a map+mutex Table that counts its CompareAndDelete calls.
type table struct {
	mu      sync.Mutex
	m       map[string]*entry
	deletes atomic.Int64
}

func newTable(idle, busy int) *table {
	t := &table{m: map[string]*entry{}}
	for i := range idle + busy {
		t.m[string(rune('A'+i))] = &entry{idle: i < idle}
	}
	return t
}

func (t *table) Range(yield func(string, *entry) bool) {
	t.mu.Lock()
	snapshot := make(map[string]*entry, len(t.m))
	for k, v := range t.m {
		snapshot[k] = v
	}
	t.mu.Unlock()
	for k, v := range snapshot {
		if !yield(k, v) {
			return
		}
	}
}

func (t *table) CompareAndDelete(k string, old *entry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deletes.Add(1)
	if t.m[k] != old {
		return false
	}
	delete(t.m, k)
	return true
}

func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func TestPassRemovesOnlyRetired(t *testing.T) {
	tb := newTable(3, 4)
	if got := sweeper.Pass(tb, retire); got != 3 {
		t.Fatalf("Pass removed %d, want 3", got)
	}
	if n := tb.len(); n != 4 {
		t.Fatalf("%d entries left, want the 4 busy ones", n)
	}
	for k, e := range tb.m {
		if e.retired {
			t.Errorf("entry %s left in the table is marked retired", k)
		}
	}
}

// An entry replaced after retire marked the old value must survive: the
// delete compares values, not keys.
func TestPassKeepsReplacedEntry(t *testing.T) {
	tb := newTable(1, 0)
	fresh := &entry{}
	removed := sweeper.Pass(tb, func(e *entry) bool {
		ok := retire(e)
		tb.mu.Lock()
		tb.m["A"] = fresh // a request replaced the retired value
		tb.mu.Unlock()
		return ok
	})
	if removed != 0 || tb.m["A"] != fresh {
		t.Fatalf("Pass removed %d and left %p, want 0 and the fresh entry %p", removed, tb.m["A"], fresh)
	}
}

func TestSweeperRunsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(2, 1)
		s := sweeper.Start(tb, retire, time.Minute)
		defer s.Stop()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if s.Passes() != 0 || tb.len() != 3 {
			t.Fatalf("before the first interval: %d passes, %d entries; want 0 and 3", s.Passes(), tb.len())
		}
		time.Sleep(6 * time.Minute)
		synctest.Wait()
		if s.Passes() != 6 || s.Removed() != 2 || tb.len() != 1 {
			t.Fatalf("after 6 minutes: %d passes, %d removed, %d left; want 6, 2, 1", s.Passes(), s.Removed(), tb.len())
		}
	})
}

func TestKickRunsEarlyAtMostOncePerCooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTable(0, 1)
		// A pass takes no fake time, so the cooldown is its least, 1 ms.
		s := sweeper.Start(tb, retire, time.Minute)
		defer s.Stop()
		for range 1000 {
			s.Kick() // a spray kicks on every request
		}
		synctest.Wait()
		if s.Passes() != 1 {
			t.Fatalf("after 1000 kicks: %d passes, want 1", s.Passes())
		}
		s.Kick()
		time.Sleep(time.Millisecond / 2)
		synctest.Wait()
		if s.Passes() != 1 {
			t.Fatalf("kick inside the cooldown ran at once: %d passes, want 1", s.Passes())
		}
		time.Sleep(time.Millisecond / 2)
		synctest.Wait()
		if s.Passes() != 2 {
			t.Fatalf("kick buffered during the cooldown: %d passes after it, want 2", s.Passes())
		}
	})
}

// A slow pass spaces kicked passes out: the cooldown is ten times the last
// pass, at most interval/10.
func TestKickCooldownFollowsPassDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(e *entry) bool {
			time.Sleep(20 * time.Millisecond) // a pass over a big table
			return retire(e)
		}
		s := sweeper.Start(newTable(0, 1), slow, time.Minute)
		defer s.Stop()
		s.Kick()                          // pass 1: [0, 20ms]
		time.Sleep(30 * time.Millisecond) //
		s.Kick()                          // pass 2: [30ms, 50ms]; next kicked pass not before 30+200ms
		time.Sleep(30 * time.Millisecond) //
		s.Kick()                          // buffered
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if s.Passes() != 2 {
			t.Fatalf("%d passes at 210ms, want 2: the cooldown ignored the 20ms pass", s.Passes())
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if s.Passes() != 3 {
			t.Fatalf("%d passes after the cooldown, want 3", s.Passes())
		}
	})
}

func TestStopIsIdempotentAndEndsTheGoroutine(t *testing.T) {
	s := sweeper.Start(newTable(0, 0), retire, time.Hour)
	s.Stop()
	s.Stop()
	s.Kick() // after Stop: must not block or panic
	// goleak in TestMain fails the package if the goroutine outlived Stop.
}

func TestStartRejectsNonPositiveInterval(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Start with a zero interval did not panic")
		}
	}()
	sweeper.Start(newTable(0, 0), retire, 0)
}
