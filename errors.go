package tributary

//go:generate go run ./internal/gen/cmd/generrors -o errors_gen.go

import (
	"errors"
	"fmt"
)

// Error is one Kafka protocol error code. The SDK returns these (wrapped
// with context) and the broker answers with their codes, so one table
// serves both halves. Compare with errors.Is against the Err* variables.
type Error struct {
	Code      int16  // the wire error code
	Name      string // Kafka's name, e.g. UNKNOWN_TOPIC_OR_PARTITION
	Retriable bool   // whether Kafka considers a retry sensible
}

func (e *Error) Error() string { return e.Name }

var byCode = map[int16]*Error{}

func newError(code int16, name string, retriable bool) *Error {
	e := &Error{Code: code, Name: name, Retriable: retriable}
	byCode[code] = e
	return e
}

// ErrorForCode returns the *Error for a wire code, nil for 0, and an
// UNKNOWN_SERVER_ERROR-named error carrying the code for codes this table
// does not know (a newer broker may send them).
func ErrorForCode(code int16) error {
	if code == 0 {
		return nil
	}
	if e, ok := byCode[code]; ok {
		return e
	}
	return &Error{Code: code, Name: fmt.Sprintf("UNKNOWN_ERROR_CODE_%d", code)}
}

// CodeOf returns the Kafka error code carried by err: 0 for nil, the code
// of a wrapped *Error, and UNKNOWN_SERVER_ERROR (-1) for anything else.
func CodeOf(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return ErrUnknownServerError.Code
}

// IsRetriable reports whether err wraps a Kafka error code that Kafka marks
// retriable (the Retriable field of its *Error, as listed in errors_gen.go):
// the same request may succeed later, usually after a metadata refresh.
// It is false for nil, for errors that wrap no Kafka error code, and so for
// the SDK's own transport errors (client.ErrConnection and friends), which
// the SDK retries itself where that makes sense.
func IsRetriable(err error) bool {
	var ke *Error
	return errors.As(err, &ke) && ke.Retriable
}
