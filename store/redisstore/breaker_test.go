package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// The node breaker's rules, on an injected clock: consecutive failures
// open it, a success in between resets the count, it stays open for the
// cooldown, then lets exactly one probe through, which reopens or closes
// it; a cancelled caller and an error reply from the node are no failures.
func TestNodeBreakerRules(t *testing.T) {
	down := errors.New("dial tcp: connection refused")
	b := newNodeBreaker(3, 1000)
	at := func(now int64) func() int64 { return func() int64 { return now } }
	call := func(now int64, err error) (ok bool) {
		ok, probe := b.admit(at(now))
		if ok {
			b.record(at(now), err, probe)
		}
		return ok
	}
	for _, err := range []error{down, down, nil, down, down,
		fmt.Errorf("store: redis: %w", redis.ErrNoScript), // a reply: the node answered
		down, down} {
		if !call(0, err) || b.Opens() != 0 {
			t.Fatalf("breaker opened after %v, before 3 consecutive failures", err)
		}
	}
	call(10, fmt.Errorf("store: redis: %w", context.Canceled)) // neither failure nor success
	call(10, down)
	if b.Opens() != 1 || call(10, nil) || call(1009, nil) {
		t.Fatal("not open for the cooldown after 3 consecutive failures")
	}
	ok, probe := b.Admit(1010)
	if !ok || !probe {
		t.Fatal("no probe after the cooldown")
	}
	if ok, _ := b.Admit(1010); ok {
		t.Fatal("a second call let through while the probe is in flight")
	}
	b.record(at(1011), down, true) // the probe failed: open again
	if call(2010, nil) || b.Opens() != 2 {
		t.Fatal("a failed probe did not reopen the breaker for a cooldown")
	}
	ok, probe = b.Admit(2011)
	if !ok || !probe {
		t.Fatal("no second probe")
	}
	b.record(at(2011), context.Canceled, true) // the probe's caller left: another may probe
	if ok, probe = b.Admit(2012); !ok || !probe {
		t.Fatal("no probe after a cancelled one")
	}
	b.record(at(2012), nil, true)
	if !call(2013, down) || !call(2013, nil) {
		t.Fatal("not closed after a successful probe")
	}
}
