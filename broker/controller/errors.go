package controller

import (
	"errors"
	"fmt"

	"github.com/tributary/tributary"
)

// Error is a Kafka error code with the message Kafka sends beside it.
// errors.Is(err, tributary.ErrX) works on it; Message gives the text for a
// response's ErrorMessage field.
type Error struct {
	Err     *tributary.Error
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Err.Name
	}
	return e.Err.Name + ": " + e.Message
}

// Unwrap returns the Kafka error.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kerr *tributary.Error, format string, args ...any) error {
	return &Error{Err: kerr, Message: fmt.Sprintf(format, args...)}
}

// Message returns the message part of err for a response's ErrorMessage:
// the text of an *Error, else err's text, "" for nil.
func Message(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// kafkaErr rebuilds an *Error from a wire code and message.
func kafkaErr(code int16, msg string) error {
	if code == 0 {
		return nil
	}
	ke, ok := tributary.ErrorForCode(code).(*tributary.Error)
	if !ok {
		ke = tributary.ErrUnknownServerError
	}
	return &Error{Err: ke, Message: msg}
}
