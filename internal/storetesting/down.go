// Package storetesting has limiter.Store doubles for the tests of packages
// built on the limiter.
package storetesting

import (
	"context"
	"errors"

	"github.com/floodgate-go/floodgate/limiter"
)

// ErrDown is what Down returns from every call.
var ErrDown = errors.New("storetesting: connection refused")

// Down is a limiter.Store whose backend is unreachable: every call fails
// with ErrDown.
type Down struct{}

// Take implements limiter.Store.
func (Down) Take(context.Context, string, limiter.StoreRequest) (limiter.StoreResult, error) {
	return limiter.StoreResult{}, ErrDown
}

// Reset implements limiter.Store.
func (Down) Reset(context.Context, string) error { return ErrDown }

// Refund implements limiter.Store.
func (Down) Refund(context.Context, string, limiter.StoreRequest, int64) error { return ErrDown }
