//go:build !unix

package web

import (
	"errors"
	"syscall"
)

// rawIO tells whether tryWrite and tryRead work here: not on this
// system, where every viewer has a goroutine of its own instead.
const rawIO = false

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }

func tryRead(syscall.RawConn, []byte) bool { return false }
