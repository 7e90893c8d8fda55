package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EDialInNamespace proves that a connection made through
// dialInNamespace comes from inside the namespace: a listener that a child
// process holds on loopback in a fresh namespace is reached (and says so),
// which the test process cannot reach from its own; afterwards no thread of
// the test process is left in the namespace.
func TestE2EDialInNamespace(t *testing.T) {
	if !Enabled() {
		t.Skip("end-to-end test: set PACSD_E2E=1 (or run 'make test') to run it")
	}
	if os.Geteuid() != 0 {
		t.Fatal("entering a network namespace needs root; run the end-to-end tests as root")
	}
	name := "pacsd-e2e-dial-" + newRunID()
	if err := run("ip", "netns", "add", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run("ip", "netns", "del", name); err != nil {
			t.Errorf("while removing namespace %s: %v", name, err)
		}
	})
	ns := "/run/netns/" + name
	if err := run("nsenter", "--net="+ns, "--", "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	child := exec.Command("nsenter", "--net="+ns, "--", os.Args[0], "-test.run", "^TestHelperNamespaceListener$")
	child.Env = append(os.Environ(), "PACSD_E2E_NS_LISTENER=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addrc <- strings.TrimSpace(line)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatal("the listener in the namespace did not say its address within 30 s")
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("the listener in the namespace said %q, want its loopback address", addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialInNamespace(ctx, ns, "tcp", addr)
	if err != nil {
		t.Fatalf("dialInNamespace does not reach %s inside namespace %s: %v", addr, name, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	_ = c.Close()
	if greeting != "inside\n" {
		t.Fatalf("the connection to %s inside namespace %s read %q (%v), want the listener's greeting", addr, name, greeting, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		g, _ := bufio.NewReader(c).ReadString('\n')
		_ = c.Close()
		if g == "inside\n" {
			t.Fatalf("the test process reaches the namespace's listener at %s from its own namespace; the check proves nothing", addr)
		}
	}
	if _, err := dialInNamespace(ctx, "/run/netns/pacsd-e2e-none-"+newRunID(), "tcp", addr); err == nil {
		t.Errorf("dialInNamespace into a namespace that does not exist succeeded")
	}
	nsSt, err := os.Stat(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := Poll(5*time.Second, func() error {
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
		for _, task := range tasks {
			if st, err := os.Stat(task); err == nil && os.SameFile(st, nsSt) {
				return fmt.Errorf("thread %s of the test process is still in namespace %s", filepath.Dir(filepath.Dir(task)), name)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestHelperNamespaceListener is the child of TestE2EDialInNamespace: it
// listens on loopback, prints its address and greets every connection with
// "inside". Run on its own it returns at once.
func TestHelperNamespaceListener(t *testing.T) {
	if os.Getenv("PACSD_E2E_NS_LISTENER") != "1" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		_, _ = c.Write([]byte("inside\n"))
		_ = c.Close()
	}
}
