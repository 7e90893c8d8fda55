package docker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestE2ESSH drives a test host's engine through a real OpenSSH sshd in the
// host's network namespace, the way pacsd drives a host block's
// ssh://root@host:port/path/to/docker.sock: engine calls through one ssh
// connection, a changed host key and a key the host does not accept refused
// with what to do, the keys of an ssh-agent, sshd restarted under a running
// Runtime, and sshd stopped (calls fail within their timeouts).
func TestE2ESSH(t *testing.T) {
	h := e2e.RequireTestHost(t)
	e := h.Env()
	s := e2e.StartSSHD(t, h)
	ctx := context.Background()
	const dial = 5 * time.Second
	newSSHRuntime := func(t *testing.T, ssh SSH) *Runtime {
		t.Helper()
		ssh.DialTimeout = dial
		r, err := New(s.Endpoint, nil, h.Address, WithSSH(ssh))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		r.Labels = e.Labels()
		r.StopGrace = 5 * time.Second
		return r
	}
	r := newSSHRuntime(t, SSH{IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts})
	cluster := "c-" + e.RunID

	t.Run("engine calls", func(t *testing.T) {
		if err := r.Ping(ctx); err != nil {
			t.Fatalf("Ping through %s: %v", s.Endpoint, err)
		}
		name := e.Name("ssh")
		id, err := r.ContainerCreate(ctx, reconcile.ContainerSpec{
			Name: name, Image: e.Image, Labels: labels(e, "ssh"), Cmd: []string{"sleep", "600"}, RestartPolicy: "no",
			Files: []reconcile.FileWrite{{Path: pwFile, Content: []byte(password), Mode: 0o400, Secret: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.ContainerStart(ctx, id); err != nil {
			t.Fatal(err)
		}
		st, err := r.ContainerInspect(ctx, name, cluster, "ssh")
		if err != nil || st == nil || !st.Running || !st.Owned {
			t.Fatalf("ContainerInspect: got %+v, %v; want running and owned", st, err)
		}
		// exec attaches a hijacked stream: through the ssh channel too.
		out, code, err := r.Exec(ctx, id, "", []string{"cat", pwFile})
		if err != nil || code != 0 || out != password {
			t.Errorf("Exec: got %q, exit %d, %v; want the placed file", out, code, err)
		}
		files, err := r.ReadFiles(ctx, id, []string{pwFile})
		if err != nil || string(files[pwFile]) != password {
			t.Errorf("ReadFiles: got %q, %v", files[pwFile], err)
		}
		if err := r.ContainerRemove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if st, err := r.ContainerInspect(ctx, name, cluster, "ssh"); err != nil || st != nil {
			t.Errorf("ContainerInspect after ContainerRemove: got %+v, %v; want none", st, err)
		}
		if n := s.Connections(); n != 1 {
			t.Errorf("the calls went through %d ssh connections, want 1", n)
		}
	})

	t.Run("changed host key", func(t *testing.T) {
		_, other := e2e.NewSSHKey(t)
		r2 := newSSHRuntime(t, SSH{IdentityFile: s.IdentityFile, KnownHosts: s.KnownHostsWith(other)})
		err := r2.Ping(ctx)
		for _, want := range []string{"has changed", "pacsd does not connect", "ssh-keygen -R '[" + h.Address + "]:", fmt.Sprintf("ssh-keyscan -p %d %s >>", s.Port, h.Address)} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Ping with another host key in known_hosts: got %v, want an error saying %q", err, want)
			}
		}
		t.Logf("changed host key: %v", err)
		// known_hosts without the host: refused before connecting.
		_, err = New(s.Endpoint, nil, h.Address, WithSSH(SSH{IdentityFile: s.IdentityFile, KnownHosts: s.Dir + "/no-such-known_hosts"}))
		if err == nil || !strings.Contains(err.Error(), "ssh-keyscan -p") {
			t.Errorf("New with a missing known_hosts: got %v, want the refusal with ssh-keyscan", err)
		}
	})

	t.Run("key not authorized", func(t *testing.T) {
		key, _ := e2e.NewSSHKey(t)
		err := newSSHRuntime(t, SSH{IdentityFile: key, KnownHosts: s.KnownHosts}).Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "refused every key") || !strings.Contains(err.Error(), "authorized_keys") || !strings.Contains(err.Error(), key) {
			t.Errorf("Ping with a key not in authorized_keys: got %v, want the refusal naming the key and authorized_keys", err)
		}
		t.Logf("key not authorized: %v", err)
	})

	t.Run("agent", func(t *testing.T) {
		t.Setenv("HOME", t.TempDir()) // no ~/.ssh keys: the agent's alone
		t.Setenv("SSH_AUTH_SOCK", e2e.StartSSHAgent(t, s.IdentityFile))
		ra := newSSHRuntime(t, SSH{KnownHosts: s.KnownHosts})
		if err := ra.Ping(ctx); err != nil {
			t.Fatalf("Ping with the agent's key: %v", err)
		}
		if st, err := ra.ContainerInspect(ctx, e.Name("absent"), cluster, "x"); err != nil || st != nil {
			t.Errorf("ContainerInspect with the agent's key: got %+v, %v", st, err)
		}
	})

	t.Run("sshd restarted", func(t *testing.T) {
		if err := r.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		s.Kill()
		err := r.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "ECONNREFUSED") {
			t.Errorf("Ping with sshd down: got %v, want nothing listening", err)
		}
		s.Start()
		// The first call after the restart is not one HTTP retries by itself.
		name := e.Name("after-restart")
		id, err := r.ContainerCreate(ctx, reconcile.ContainerSpec{Name: name, Image: e.Image, Labels: labels(e, "after-restart"), Cmd: []string{"true"}, RestartPolicy: "no"})
		if err != nil {
			t.Fatalf("the first call after sshd was killed and started again: %v", err)
		}
		if err := r.ContainerRemove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if n := s.Connections(); n != 1 {
			t.Errorf("%d ssh connections after the restart, want 1", n)
		}
	})

	t.Run("sshd stopped", func(t *testing.T) {
		if err := r.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		fresh := newSSHRuntime(t, SSH{IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts})
		fresh.Timeouts.Inspect = time.Minute // the dial timeout bounds it
		r.Timeouts.Inspect = 3 * time.Second
		defer func() { r.Timeouts.Inspect = 0 }()
		s.Stop()
		defer s.Continue()
		start := time.Now()
		err := r.Ping(ctx)
		if took := time.Since(start); err == nil || took > 4*time.Second {
			t.Errorf("Ping on the open connection to a stopped sshd: %v after %s; want an error within the 3 s timeout", err, took.Round(time.Millisecond))
		} else {
			t.Logf("open connection, sshd stopped: failed after %s: %v", took.Round(time.Millisecond), err)
		}
		start = time.Now()
		err = fresh.Ping(ctx)
		if took := time.Since(start); err == nil || took > dial+2*time.Second {
			t.Errorf("Ping on a new connection to a stopped sshd: %v after %s; want an error after the %s dial timeout", err, took.Round(time.Millisecond), dial)
		} else {
			t.Logf("new connection, sshd stopped: failed after %s: %v", took.Round(time.Millisecond), err)
		}
		s.Continue()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := r.Ping(ctx)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Ping after sshd continued: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := fresh.Ping(ctx); err != nil {
			t.Errorf("Ping of the fresh Runtime after sshd continued: %v", err)
		}
	})
}
