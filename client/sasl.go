package client

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// Mechanism is one SASL mechanism. The client runs SaslHandshake v1 naming
// the mechanism, then wraps every exchange in SaslAuthenticate (KIP-152).
type Mechanism interface {
	// Name is the mechanism's registered name, e.g. "PLAIN" or "SCRAM-SHA-256".
	Name() string
	// Authenticate starts an exchange with the broker at host and returns
	// the session that handles the broker's challenges and the first
	// message to send.
	Authenticate(ctx context.Context, host string) (Session, []byte, error)
}

// Session continues a SASL exchange.
type Session interface {
	// Challenge handles the broker's response to the last message. It
	// returns done once authentication is complete, or the next message.
	Challenge(resp []byte) (done bool, next []byte, err error)
}

// Plain returns the SASL/PLAIN mechanism (RFC 4616) for user and password.
// Use it only over TLS: the password travels as is.
func Plain(user, password string) Mechanism { return plain{user, password} }

type plain struct{ user, pass string }

func (plain) Name() string { return "PLAIN" }

func (p plain) Authenticate(context.Context, string) (Session, []byte, error) {
	if p.user == "" {
		return nil, nil, errors.New("sasl plain: empty user")
	}
	msg := make([]byte, 0, 2+len(p.user)+len(p.pass))
	msg = append(msg, 0) // no authorization identity: act as the user itself
	msg = append(msg, p.user...)
	msg = append(msg, 0)
	msg = append(msg, p.pass...)
	return plainSession{}, msg, nil
}

type plainSession struct{}

func (plainSession) Challenge([]byte) (bool, []byte, error) { return true, nil, nil }

// authenticate runs the SASL exchange on a freshly negotiated connection,
// before its reader and writer goroutines start.
func (cn *conn) authenticate(ctx context.Context, mechs []Mechanism, host string) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = mechs[0].Name()
	raw, err := cn.roundTrip(hs, 1, 1)
	if err != nil {
		return fmt.Errorf("sasl handshake: %w", err)
	}
	hresp := raw.(*kmsg.SASLHandshakeResponse)
	mech := mechs[0]
	if hresp.ErrorCode != 0 {
		// The broker lists what it supports; pick our first one it knows.
		found := false
		for _, m := range mechs[1:] {
			if slices.Contains(hresp.SupportedMechanisms, m.Name()) {
				mech, found = m, true
				break
			}
		}
		if !found {
			return fmt.Errorf("sasl: broker supports %v: %w", hresp.SupportedMechanisms, tributary.ErrorForCode(hresp.ErrorCode))
		}
		hs.Mechanism = mech.Name()
		if raw, err = cn.roundTrip(hs, 1, 1); err != nil {
			return fmt.Errorf("sasl handshake: %w", err)
		}
		if code := raw.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
			return fmt.Errorf("sasl handshake %s: %w", mech.Name(), tributary.ErrorForCode(code))
		}
	}
	sess, msg, err := mech.Authenticate(ctx, host)
	if err != nil {
		return fmt.Errorf("sasl %s: %w", mech.Name(), err)
	}
	for range 16 { // no real mechanism needs more round trips; bound a hostile broker
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SASLAuthBytes = msg
		raw, err := cn.roundTrip(req, 0, req.MaxVersion())
		if err != nil {
			return fmt.Errorf("sasl authenticate: %w", err)
		}
		resp := raw.(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != 0 {
			detail := ""
			if resp.ErrorMessage != nil {
				detail = ": " + *resp.ErrorMessage
			}
			return fmt.Errorf("sasl %s%s: %w", mech.Name(), detail, tributary.ErrorForCode(resp.ErrorCode))
		}
		done, next, err := sess.Challenge(resp.SASLAuthBytes)
		if err != nil {
			return fmt.Errorf("sasl %s: %w", mech.Name(), err)
		}
		if done {
			return nil
		}
		msg = next
	}
	return fmt.Errorf("sasl %s: too many round trips", mech.Name())
}
