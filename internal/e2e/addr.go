package e2e

import (
	"net"
	"testing"
)

// FreeLoopbackAddr returns an address on 127.0.0.1 that no one listened on
// at the time of the look, for a pacsd's daemon.listen.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
