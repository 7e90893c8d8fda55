package e2e

import (
	"io"
	"net"
	"net/url"
	"sync"
)

// EngineProxy puts the Docker engine behind a loopback TCP port
// (tcp://127.0.0.1:port) and can cut it off: while cut, new connections are
// accepted and then left without an answer, and the open ones are closed, as
// when a host's engine is behind a network partition (calls time out, they
// are not refused). It is closed when the test ends.
type EngineProxy struct {
	// Endpoint is the proxy's Docker endpoint, tcp://127.0.0.1:port.
	Endpoint string
	ln       net.Listener
	socket   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// StartEngineProxy starts a proxy to the engine the Env talks to, which must
// listen on a unix socket.
func (e *Env) StartEngineProxy() *EngineProxy {
	e.T.Helper()
	u, err := url.Parse(e.Docker.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		e.T.Fatalf("the engine proxy needs an engine on a unix socket, not %q", e.Docker.DaemonHost())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.T.Fatal(err)
	}
	p := &EngineProxy{Endpoint: "tcp://" + ln.Addr().String(), ln: ln, socket: u.Path, conns: map[net.Conn]bool{}}
	go p.serve()
	e.T.Cleanup(p.close)
	return p
}

func (p *EngineProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		cut := p.cut
		p.mu.Unlock()
		if !cut {
			go p.forward(c)
		}
	}
}

func (p *EngineProxy) forward(c net.Conn) {
	defer p.drop(c)
	up, err := net.Dial("unix", p.socket)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *EngineProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// Cut cuts the engine off: open connections are closed, new ones hang.
func (p *EngineProxy) Cut() { p.set(true) }

// Restore lets connections through again; the ones that hung are closed,
// so their callers try again.
func (p *EngineProxy) Restore() { p.set(false) }

// set cuts the engine off or not, and closes every open connection.
func (p *EngineProxy) set(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *EngineProxy) close() {
	p.ln.Close()
	p.Cut()
}
