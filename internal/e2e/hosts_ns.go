package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread to itself. A goroutine that
// enters a test host's network namespace locks its thread and never unlocks
// it, so that the thread ends with the goroutine and no other goroutine ever
// runs in the namespace; the runtime cannot end the main thread, only park it
// for good, which would keep the namespace (and, in it, the host's end of its
// veth pair) alive. Locked here, the main thread never runs such a goroutine.
func init() { runtime.LockOSThread() }

// dialInNamespace opens a connection to addr from inside the network
// namespace at nsPath (a test host's), as a process of that host would: on a
// goroutine of its own, whose thread joins the namespace before the socket
// is made and ends with the goroutine. ctx bounds the dial.
func dialInNamespace(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: see init.
		runtime.LockOSThread()
		conn, err := func() (net.Conn, error) {
			f, err := os.Open(nsPath)
			if err != nil {
				return nil, fmt.Errorf("while opening network namespace %s: %w", nsPath, err)
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				return nil, fmt.Errorf("while entering network namespace %s: %w", nsPath, err)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}()
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-ctx.Done():
		// The dial ends too (it is bounded by ctx); close what it may still open.
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("while connecting to %s inside network namespace %s: %w", addr, nsPath, ctx.Err())
	}
}
