package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions in this package wrap them with detail, so match
// them with errors.Is rather than ==.
var (
	// ErrFrameTooLarge reports a frame whose length exceeds the configured
	// limit, either when encoding one or when reading a frame header.
	ErrFrameTooLarge = errors.New("wire: frame too large")

	// ErrVersion reports a message whose version byte is not Version. The
	// peer speaks a different protocol and nothing after the version byte
	// can be trusted.
	ErrVersion = errors.New("wire: protocol version mismatch")

	// ErrMalformed reports a message that cannot be decoded: an unknown
	// kind, truncated data, trailing bytes, an invalid value or a count
	// larger than the remaining input could hold.
	ErrMalformed = errors.New("wire: malformed message")
)

// errTooLarge builds the ErrFrameTooLarge error for a frame of n bytes
// against limit max. It is only called on failure paths, so fmt is fine.
func errTooLarge(n uint64, max int) error {
	return fmt.Errorf("%w: %d bytes exceeds limit of %d", ErrFrameTooLarge, n, max)
}

// errBadVersion builds the ErrVersion error naming both versions, so that a
// mixed deployment is diagnosable from the log line alone.
func errBadVersion(got byte) error {
	return fmt.Errorf("%w: got version %d, want %d", ErrVersion, got, Version)
}

// malformed builds an ErrMalformed error with detail.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
