//go:build unix

package web

import (
	"errors"
	"syscall"
)

// rawIO tells whether tryWrite and tryRead work here.
const rawIO = true

// tryWrite writes what b it can to c without waiting: 0 bytes and no error
// if the socket is full.
func tryWrite(c syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := c.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true // never wait for the socket
	})
	if errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR) {
		return 0, nil
	}
	if err == nil {
		err = werr
	}
	return max(n, 0), err
}

// tryRead reads into scratch from c without waiting and reports whether
// the peer may still be there: false at the end of the stream or on an
// error.
func tryRead(c syscall.RawConn, scratch []byte) bool {
	var n int
	var rerr error
	err := c.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), scratch)
		return true
	})
	if err != nil {
		return false
	}
	if rerr != nil {
		return errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR)
	}
	return n > 0
}
