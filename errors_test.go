package tributary

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCodesRoundTrip(t *testing.T) {
	if ErrorForCode(0) != nil {
		t.Fatal("code 0 must be no error")
	}
	for code, e := range byCode {
		if got := ErrorForCode(code); got != e {
			t.Fatalf("ErrorForCode(%d) = %v, want %v", code, got, e)
		}
		wrapped := fmt.Errorf("produce orders-0: %w", e)
		if !errors.Is(wrapped, e) || CodeOf(wrapped) != code {
			t.Fatalf("%s lost through wrapping", e.Name)
		}
	}
	// Names the SDK and the broker rely on, with Kafka's codes.
	for _, c := range []struct {
		err       *Error
		code      int16
		retriable bool
	}{
		{ErrUnknownTopicOrPartition, 3, true},
		{ErrNotLeaderOrFollower, 6, true},
		{ErrMessageTooLarge, 10, false},
		{ErrInvalidTopicException, 17, false},
		{ErrUnsupportedVersion, 35, false},
		{ErrOutOfOrderSequenceNumber, 45, false},
		{ErrInvalidRecord, 87, false},
	} {
		if c.err.Code != c.code || c.err.Retriable != c.retriable || IsRetriable(c.err) != c.retriable {
			t.Fatalf("%s: code %d retriable %v", c.err.Name, c.err.Code, c.err.Retriable)
		}
	}
}

func TestUnknownCodesKeepTheirCode(t *testing.T) {
	err := ErrorForCode(31000)
	if CodeOf(err) != 31000 || err.Error() == "" {
		t.Fatalf("unknown code: %v (%d)", err, CodeOf(err))
	}
	if CodeOf(errors.New("plain")) != ErrUnknownServerError.Code || CodeOf(nil) != 0 {
		t.Fatal("CodeOf of a non-Kafka error must be UNKNOWN_SERVER_ERROR, of nil 0")
	}
}
