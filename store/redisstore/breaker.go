package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/breaker"
)

// A nodeBreaker is the circuit breaker of one Redis Cluster master, with
// the Limiter's rules (store.Config's BreakerFailures and BreakerCooldown)
// applied to that node alone: closed while the node answers; after a run
// of consecutive failures on it, open for a cooldown, during which calls
// for its keys fail at once with store.ErrUnavailable (so the Limiter's
// failure mode decides them without waiting for the timeout); then one
// call is let through as a probe (half-open), which closes the breaker if
// the node answers and reopens it otherwise. Successes on other nodes
// never reset it: that is why it exists, as the Limiter's breaker, which
// counts consecutive failures over all keys, never opens while any other
// node answers.
type nodeBreaker struct{ breaker.Breaker }

func newNodeBreaker(failures int, cooldown int64) *nodeBreaker {
	return &nodeBreaker{breaker.Breaker{Threshold: int64(failures), Cooldown: cooldown}}
}

// admit reports whether a call may go to the node, and whether it is the
// half-open probe. The clock is read only while the breaker is open: a
// closed breaker, the common case, needs no time.
func (b *nodeBreaker) admit(now func() int64) (ok, probe bool) {
	if !b.Open() {
		return true, false
	}
	return b.Admit(now())
}

// record records a call's outcome, reading the clock only for a failure
// (the time the cooldown starts from): an answer from the node (a
// reply, or an error reply, which the node sent too) is a success; a
// caller that cancelled says nothing about the node; anything else (a
// refused connection, a timeout, a broken one) is a failure.
func (b *nodeBreaker) record(now func() int64, err error, probe bool) {
	var reply redis.Error
	switch {
	case err == nil || errors.As(err, &reply):
		b.Success(probe)
	case errors.Is(err, context.Canceled):
		b.Abandon(probe)
	default:
		b.Failure(now(), probe)
	}
}
