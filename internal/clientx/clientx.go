// Package clientx gives Tributary's producer, consumer and admin packages
// what they need from a client.Client beyond its public API: retry
// backoff, the configured request timeout and the logger. Keeping these
// here keeps them out of the user's API (go doc client), where they would
// read as things a user must call.
//
// Package client fills in Of from an init function; this package cannot
// import client (client imports it), hence the untyped parameter.
package clientx

import (
	"context"
	"log/slog"
	"time"
)

// Internals is the part of a client only sibling packages use.
type Internals interface {
	// Backoff returns how long to wait before retry number attempt
	// (1-based): RetryBackoff doubling per attempt up to RetryBackoffMax,
	// with jitter.
	Backoff(attempt int) time.Duration
	// RequestTimeout is the client's RequestTimeout option.
	RequestTimeout() time.Duration
	// Logger is the client's logger, never nil.
	Logger() *slog.Logger
}

// Of returns the internals of cl, which must be a *client.Client.
var Of func(cl any) Internals

// Sleep waits d, or until ctx is done and then returns ctx's error: the
// wait between retries in every package that retries.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
