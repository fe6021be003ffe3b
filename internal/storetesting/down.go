// Package storetesting has store.Store doubles for the tests of packages
// built on the limiter.
package storetesting

import (
	"context"
	"errors"

	"github.com/floodgate-go/floodgate/store"
)

// ErrDown is what Down returns from every call.
var ErrDown = errors.New("storetesting: connection refused")

// Down is a store.Store whose backend is unreachable: every call fails
// with ErrDown.
type Down struct{}

// Take implements store.Store.
func (Down) Take(context.Context, string, store.Request) (store.Result, error) {
	return store.Result{}, ErrDown
}

// Peek implements store.Store.
func (Down) Peek(context.Context, string, store.Request) (store.Result, error) {
	return store.Result{}, ErrDown
}

// Reset implements store.Store.
func (Down) Reset(context.Context, string) error { return ErrDown }

// Refund implements store.Store.
func (Down) Refund(context.Context, string, store.Request, int64) error { return ErrDown }
