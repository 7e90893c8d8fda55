package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// TestTLSFailureIsAnAnswer: a server that takes the SSLRequest and then
// fails the handshake (TLS 1.1 at most) answered: its error matches
// ErrServerRefused, so that it is never taken for a lost primary.
func TestTLSFailureIsAnAnswer(t *testing.T) {
	a, _, err := certs.NewAuthority("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := a.Issue([]string{"db1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.ReadFull(c, make([]byte, 8)); err != nil { // SSLRequest
					return
				}
				if _, err := c.Write([]byte{'S'}); err != nil {
					return
				}
				_ = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}, MaxVersion: tls.VersionTLS11}).Handshake()
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = reconcile.WithPeer(ctx, reconcile.Peer{ServerName: "db1", RootCA: a.CertPEM()})
	_, err = New().Connect(ctx, ln.Addr().String(), "pacs", spec.NewSecret("pw", "test"), "pacsdb")
	if !errors.Is(err, reconcile.ErrServerRefused) {
		t.Errorf("a server whose TLS handshake fails: %v; want an error matching ErrServerRefused (it answered)", err)
	}
}
