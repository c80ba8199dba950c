//go:build !unix

package proc

import (
	"errors"
	"os"
)

// childFile fails: process workers need inherited descriptors 3 and 4,
// which this system does not pass to children.
func childFile(int, string) (*os.File, error) {
	return nil, errors.New("aplex: process workers are not supported on this system")
}
