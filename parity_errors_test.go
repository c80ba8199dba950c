package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aplex-go/aplex"
)

// Error types of the parity tests. They are registered at package level, so
// the re-executed worker binary registers them too.

// QuotaError is a typed error with a pointer receiver.
type QuotaError struct {
	User  string
	Limit int
}

func (e *QuotaError) Error() string { return fmt.Sprintf("quota of %s exceeded (%d)", e.User, e.Limit) }

// CodeError is a typed error with a value receiver.
type CodeError struct{ Code int }

func (e CodeError) Error() string { return fmt.Sprintf("code %d", e.Code) }

// LimitError wraps a registered sentinel; its Err field does not cross
// (tagged "-"), errors.Is of the sentinel crosses by registration.
type LimitError struct {
	Limit int
	Err   error `cbor:"-"`
}

func (e *LimitError) Error() string { return fmt.Sprintf("limit %d: %v", e.Limit, e.Err) }
func (e *LimitError) Unwrap() error { return e.Err }

// unregisteredError is never registered: only its message and Type cross.
type unregisteredError struct{ N int }

func (e *unregisteredError) Error() string { return fmt.Sprintf("unregistered %d", e.N) }

// hiddenError cannot be registered: its only field is unexported.
type hiddenError struct{ limit int }

func (e *hiddenError) Error() string { return fmt.Sprint("hidden ", e.limit) }

// ifaceError cannot be registered: CBOR cannot decode into its Err field.
type ifaceError struct{ Err error }

func (e *ifaceError) Error() string { return "iface" }

var (
	ErrQuotaExceeded = aplex.RegisterError(errors.New("quota exceeded"))

	regQuota = aplex.RegisterErrorType[*QuotaError]()
	regCode  = aplex.RegisterErrorType[CodeError]()
	regLimit = aplex.RegisterErrorType[*LimitError]()

	pTypedErr = aplex.Register("test.typed-error", func(_ context.Context, kind string) (int, error) {
		switch kind {
		case "pointer":
			return 0, &QuotaError{User: "ann", Limit: 100}
		case "value":
			return 0, CodeError{Code: 7}
		case "wrapped":
			return 0, fmt.Errorf("charging: %w", &QuotaError{User: "bob", Limit: 5})
		case "sentinel":
			return 0, &LimitError{Limit: 3, Err: ErrQuotaExceeded}
		case "joined":
			return 0, errors.Join(errors.New("first"), fmt.Errorf("second: %w", CodeError{Code: 9}), &QuotaError{User: "cy", Limit: 1})
		case "unregistered":
			return 0, &unregisteredError{N: 4}
		case "oversized":
			return 0, &QuotaError{User: strings.Repeat("u", 20<<10), Limit: 1}
		case "panic":
			panic(&QuotaError{User: "dee", Limit: 42})
		}
		return 0, errors.New("unknown kind " + kind)
	})
)

// executorKinds builds one executor of each kind that runs registered works
// in this test binary.
func executorKinds(t *testing.T) map[string]*aplex.Executor {
	return map[string]*aplex.Executor{
		"thread":  newThread(t),
		"process": newProcess(t, aplex.WithPoolSize(1)),
	}
}

func TestRegisterErrorTypeAccepted(t *testing.T) {
	for name, err := range map[string]error{"*QuotaError": regQuota, "CodeError": regCode, "*LimitError": regLimit} {
		if err != nil {
			t.Errorf("RegisterErrorType[%s]: %v", name, err)
		}
	}
	if err := aplex.RegisterErrorType[*QuotaError](); err != nil {
		t.Errorf("registering twice: %v", err)
	}
}

// TestRegisterErrorTypeRefusesWhatCannotCross: a type whose values would
// arrive zeroed or not decode at all is refused at registration, naming
// the type and the field.
func TestRegisterErrorTypeRefusesWhatCannotCross(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"unexported field", aplex.RegisterErrorType[*hiddenError](), []string{"hiddenError", "limit", "unexported"}},
		{"interface field", aplex.RegisterErrorType[*ifaceError](), []string{"ifaceError", "Err", "interface"}},
		{"interface type", aplex.RegisterErrorType[error](), []string{"interface"}},
	} {
		if c.err == nil {
			t.Errorf("%s: registered", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, c.err, w)
			}
		}
	}
}

// TestErrorsAsTypedErrorOnEveryKind: errors.As to a registered error type
// finds it with its exported fields on every kind of executor; before
// RegisterErrorType, a process executor gave only a *RemoteError.
func TestErrorsAsTypedErrorOnEveryKind(t *testing.T) {
	for kind, ex := range executorKinds(t) {
		t.Run(kind, func(t *testing.T) {
			get := func(arg string) error {
				t.Helper()
				_, err := mustSubmit(t, ex, pTypedErr, arg).Get(ctxT(t))
				if err == nil {
					t.Fatalf("%s: no error", arg)
				}
				return err
			}

			err := get("pointer")
			var qe *QuotaError
			if !errors.As(err, &qe) || *qe != (QuotaError{User: "ann", Limit: 100}) || err.Error() != "quota of ann exceeded (100)" {
				t.Errorf("pointer: %v, As gave %+v", err, qe)
			}

			err = get("value")
			var ce CodeError
			if !errors.As(err, &ce) || ce.Code != 7 || err.Error() != "code 7" {
				t.Errorf("value: %v, As gave %+v", err, ce)
			}

			err = get("wrapped")
			qe = nil
			if !errors.As(err, &qe) || *qe != (QuotaError{User: "bob", Limit: 5}) || err.Error() != "charging: quota of bob exceeded (5)" {
				t.Errorf("wrapped: %v, As gave %+v", err, qe)
			}

			err = get("sentinel")
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != 3 || !errors.Is(err, ErrQuotaExceeded) {
				t.Errorf("sentinel: %v, As gave %+v, Is %v", err, le, errors.Is(err, ErrQuotaExceeded))
			}

			err = get("joined")
			qe, ce = nil, CodeError{}
			if !errors.As(err, &qe) || qe.Limit != 1 || !errors.As(err, &ce) || ce.Code != 9 {
				t.Errorf("joined: %v, As gave %+v and %+v", err, qe, ce)
			}

			err = get("panic")
			var pe *aplex.PanicError
			qe = nil
			if !errors.As(err, &pe) || !errors.As(err, &qe) || *qe != (QuotaError{User: "dee", Limit: 42}) {
				t.Errorf("panic: %v, As gave %+v", err, qe)
			}
		})
	}
}

// TestUnregisteredErrorTypeKeepsMessageAndType: without registration a
// process executor gives the message and the Go type name, and errors.As
// to the type fails (it cannot be rebuilt).
func TestUnregisteredErrorTypeKeepsMessageAndType(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	_, err := mustSubmit(t, ex, pTypedErr, "unregistered").Get(ctxT(t))
	var re *aplex.RemoteError
	if !errors.As(err, &re) || re.Type != "*aplex_test.unregisteredError" || err.Error() != "unregistered 4" {
		t.Fatalf("got %v (%#v)", err, re)
	}
	var ue *unregisteredError
	if errors.As(err, &ue) {
		t.Fatalf("errors.As found an unregistered type: %+v", ue)
	}
}

// TestOversizedTypedErrorKeepsMessageAndType: a registered error value too
// big to carry (over 16 KiB encoded) stays behind, so that the error still
// fits in a result: the caller gets its message and Type, not errors.As.
func TestOversizedTypedErrorKeepsMessageAndType(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	_, err := mustSubmit(t, ex, pTypedErr, "oversized").Get(ctxT(t))
	var re *aplex.RemoteError
	if !errors.As(err, &re) || re.Type != "*aplex_test.QuotaError" || !strings.HasPrefix(err.Error(), "quota of uuu") {
		t.Fatalf("got %.80v (%T)", err, err)
	}
	var qe *QuotaError
	if errors.As(err, &qe) {
		t.Fatalf("errors.As found the oversized value")
	}
}

// pHugeError fails with a message of n bytes wrapping io.EOF, or panics
// with one.
var pHugeError = aplex.Register("test.huge-error", func(_ context.Context, n int) (int, error) {
	if n < 0 {
		panic(strings.Repeat("p", -n))
	}
	return 0, fmt.Errorf("%s: %w", strings.Repeat("x", n), io.EOF)
})

// TestAHugeErrorMessageCrossesCut: a work's error (or panic value) with a
// message bigger than a result message made the whole error ErrTooLarge,
// its text and its identity lost, where a goroutine worker returns it as
// it is. The message and stack are cut to fit: the caller gets the start
// of the text, told how much was cut, and errors.Is still holds.
func TestAHugeErrorMessageCrossesCut(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	_, err := mustSubmit(t, ex, pHugeError, 20<<20).Get(ctxT(t))
	if errors.Is(err, aplex.ErrTooLarge) || !errors.Is(err, io.EOF) {
		t.Fatalf("error: %.100v; want the work's, matching io.EOF", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "xxxx") || !strings.Contains(msg, "bytes cut") || len(msg) > 1<<20 {
		t.Errorf("message: %d bytes, %.40q…%q", len(msg), msg, msg[max(0, len(msg)-60):])
	}
	_, err = mustSubmit(t, ex, pHugeError, -20<<20).Get(ctxT(t))
	var pe *aplex.PanicError
	if !errors.As(err, &pe) || !strings.HasPrefix(fmt.Sprint(pe.Value), "pppp") {
		t.Fatalf("panic: %.100v; want a *PanicError with the start of its value", err)
	}
}
