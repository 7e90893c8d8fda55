package state

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/pkg/certs"
)

// ErrAuthorityDamaged is matched by Authority's error when the cluster
// store holds a certificate authority for the cluster that cannot be used
// (cut short, edited, not a CA, a key that is not the certificate's, a
// certificate without its key). pacsd never replaces it by itself: the
// operator puts it back, or removes it so that a new CA is made.
var ErrAuthorityDamaged = errors.New("the cluster's certificate authority in the cluster store cannot be used")

// newCA is what a new CA means, for the errors that tell an operator to
// remove a damaged one.
const newCA = "a new CA means that every node gets a new certificate and every client must be given the new CA certificate"

// caPaths returns the files of cluster's certificate authority in the
// state directory: its certificate, its key, and the lock taken to create
// them.
func (s *Store) caPaths(cluster string) (cert, key, lock string, err error) {
	p, err := s.path(cluster)
	if err != nil {
		return "", "", "", err
	}
	base := filepath.Join(s.Dir, "ca-"+strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "cluster-"), ".json"))
	return base + ".crt", base + ".key", base + ".lock", nil
}

// Authority returns the certificate authority of cluster, which issues
// its nodes' TLS certificates, creating and storing it first when none is
// stored (certs.NewAuthority).
//
// It is kept in the state directory as ca-CLUSTER.crt (PEM, mode 0644: the
// certificate clients and standbys verify nodes with) and ca-CLUSTER.key
// (PKCS#8 PEM, mode 0600: only root and the user pacsd runs as, who owns
// the state directory, can read it). A new CA is written key first, then
// certificate, each atomically and synced, under an exclusive flock on
// ca-CLUSTER.lock; Authority reads the files again once it holds the lock,
// so that two pacsd processes on one directory end with the same CA. A key
// without its certificate is what a creation cut short leaves: it is set
// aside as ca-CLUSTER.key.orphaned-UNIXTIME and a new CA is made. An
// operator's own CA may be put in the two files instead (see
// certs.ParseAuthority for what is accepted).
//
// A stored CA that cannot be used (a certificate without its key, either
// file damaged or not a CA, a key that is not the certificate's, a key
// readable by group or others) is an error matching ErrAuthorityDamaged
// that names the file and says what to do; it is never replaced silently.
// ctx bounds the wait for another process creating the CA.
func (s *Store) Authority(ctx context.Context, cluster string) (*certs.Authority, error) {
	certP, keyP, lockP, err := s.caPaths(cluster)
	if err != nil {
		return nil, fmt.Errorf("while looking for the certificate authority of cluster %q: %w", cluster, err)
	}
	if a, err := s.readAuthority(cluster, certP, keyP); a != nil || err != nil {
		return a, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the state directory %s for the certificate authority of cluster %q: %w; "+
			"make it creatable (or create it, mode 0700) and try again", s.Dir, cluster, err)
	}
	l, err := LockFile(ctx, lockP)
	var busy *BusyError
	switch {
	case errors.As(err, &busy):
		return nil, fmt.Errorf("while creating the certificate authority of cluster %q: another pacsd process held the lock %s until this one gave up: %w; try again", cluster, lockP, err)
	case err != nil:
		return nil, fmt.Errorf("while creating the certificate authority of cluster %q: %w", cluster, err)
	}
	defer func() { _ = l.Unlock() }()
	// A lock file made by a command run with sudo stays usable by the
	// service, which runs as the directory's owner.
	if err := ownLikeDir(l.f, s.Dir); err != nil {
		return nil, fmt.Errorf("while creating the certificate authority of cluster %q: while giving the lock %s the state directory's owner: %w", cluster, lockP, err)
	}
	// Another process may have made it while this one waited.
	if a, err := s.readAuthority(cluster, certP, keyP); a != nil || err != nil {
		return a, err
	}
	return s.createAuthority(cluster, certP, keyP)
}

// readAuthority returns the CA stored at certP and keyP; nil and no error
// when none is stored (no certificate: neither file, or a key alone).
func (s *Store) readAuthority(cluster, certP, keyP string) (*certs.Authority, error) {
	certPEM, err := os.ReadFile(certP)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the certificate authority of cluster %q from %s: %w; make it readable by the user pacsd runs as", cluster, certP, err)
	}
	damaged := func(file, why string) error {
		return fmt.Errorf("while reading the certificate authority of cluster %q: %w: %s %s; pacsd never replaces a cluster's CA by itself: "+
			"put the CA's certificate back in %s and its key in %s, or move both files away to have pacsd make a new CA (%s)",
			cluster, ErrAuthorityDamaged, file, why, certP, keyP, newCA)
	}
	fi, err := os.Stat(keyP)
	if errors.Is(err, os.ErrNotExist) {
		return nil, damaged(certP, "holds the CA's certificate but its key "+filepath.Base(keyP)+" is missing")
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the certificate authority of cluster %q from %s: %w; make it readable by the user pacsd runs as", cluster, keyP, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("while reading the certificate authority of cluster %q: %w: %s is readable by group or others (mode %04o), and it is the CA's private key; "+
			"make it readable by its owner only (chmod 0600 %s), or, if others may have copied it, move both files away (%s and %s) to have pacsd make a new CA (%s)",
			cluster, ErrAuthorityDamaged, keyP, perm, keyP, certP, keyP, newCA)
	}
	keyPEM, err := os.ReadFile(keyP)
	if err != nil {
		return nil, fmt.Errorf("while reading the certificate authority of cluster %q from %s: %w; make it readable by the user pacsd runs as", cluster, keyP, err)
	}
	a, err := certs.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		// Name the file at fault: the key when the certificate reads
		// but is not the key's.
		file := certP
		if certificateReads(certPEM) && !certs.KeyMatches(certPEM, keyPEM) {
			file = keyP
		}
		return nil, damaged(file, fmt.Sprintf("is not usable (%v)", err))
	}
	return a, nil
}

// certificateReads reports whether the first certificate of b parses.
func certificateReads(b []byte) bool {
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			_, err := x509.ParseCertificate(block.Bytes)
			return err == nil
		}
	}
}

// createAuthority makes a new CA for cluster and stores it at keyP and
// certP (key first, each atomically, the directory synced after each), a
// key found alone set aside first. The caller holds the CA's lock.
func (s *Store) createAuthority(cluster, certP, keyP string) (*certs.Authority, error) {
	if _, err := os.Lstat(keyP); err == nil {
		aside := fmt.Sprintf("%s.orphaned-%d", keyP, time.Now().Unix())
		if err := os.Rename(keyP, aside); err != nil {
			return nil, fmt.Errorf("while setting aside %s, a CA key without its certificate %s: %w; "+
				"make the state directory %s writable, or put the key's certificate in %s, then try again", keyP, certP, err, s.Dir, certP)
		}
	}
	a, keyPEM, err := certs.NewAuthority(cluster, time.Now())
	if err != nil {
		return nil, err
	}
	failed := func(file string, err error) error {
		return fmt.Errorf("while storing the new certificate authority of cluster %q in %s: %w; "+
			"make sure the state directory %s is writable and its file system has free space, then try again", cluster, file, err, s.Dir)
	}
	if err := replaceFile(s.Dir, ".ca-*.tmp", keyP, keyPEM); err != nil {
		return nil, failed(keyP, err)
	}
	if err := syncDir(s.Dir); err != nil {
		return nil, failed(keyP, err)
	}
	if err := replaceFile(s.Dir, ".ca-*.tmp", certP, a.CertPEM()); err != nil {
		return nil, failed(certP, err)
	}
	if err := os.Chmod(certP, 0o644); err != nil {
		return nil, failed(certP, err)
	}
	if err := syncDir(s.Dir); err != nil {
		return nil, failed(certP, err)
	}
	return a, nil
}

// storedCA is the value of a cluster's CA key in etcd.
type storedCA struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// caKey is the etcd key of cluster's certificate authority.
func (e *Etcd) caKey(cluster string) (string, error) {
	if !safeName.MatchString(cluster) {
		return "", fmt.Errorf("cluster name %q cannot name an etcd key of a certificate authority", cluster)
	}
	return e.key("clusters", cluster, "ca"), nil
}

// Authority returns the certificate authority of cluster, which issues
// its nodes' TLS certificates, creating and storing it first when none is
// stored (certs.NewAuthority).
//
// It is kept in one etcd key, clusters/CLUSTER/ca under the prefix, as a
// JSON object {"cert": PEM, "key": PEM} (the key PKCS#8). Anyone holding a
// client certificate that etcd accepts for the prefix can read the CA's
// private key and so issue certificates the cluster's nodes and clients
// trust: this is why the etcd setup of the README authenticates pacsd with
// client certificates (and etcd's own authentication, when used, should
// give the prefix to pacsd's user only). A new CA is written in one
// transaction that succeeds only while the key does not exist
// (CreateRevision 0); a pacsd that loses that race takes the winner's, so
// every host ends with the same CA. An operator's own CA may be put in the
// key instead (see certs.ParseAuthority for what is accepted).
//
// A stored CA that cannot be used is an error matching ErrAuthorityDamaged
// that names the key and says what to do; it is never replaced silently.
// Each call to etcd is bounded by ctx and the store's OpTimeout.
func (e *Etcd) Authority(ctx context.Context, cluster string) (*certs.Authority, error) {
	k, err := e.caKey(cluster)
	if err != nil {
		return nil, fmt.Errorf("while looking for the certificate authority of cluster %q: %w", cluster, err)
	}
	gctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	resp, err := e.cli.Get(gctx, k)
	cancel()
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading the certificate authority of cluster %q", cluster), err)
	}
	if len(resp.Kvs) == 1 {
		return e.decodeAuthority(cluster, k, resp.Kvs[0].Value)
	}
	a, keyPEM, err := certs.NewAuthority(cluster, time.Now())
	if err != nil {
		return nil, err
	}
	val, err := json.Marshal(storedCA{Cert: string(a.CertPEM()), Key: string(keyPEM)})
	if err != nil {
		return nil, fmt.Errorf("while encoding the new certificate authority of cluster %q: %w", cluster, err)
	}
	tctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	txn, err := e.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(val))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		// It may have been written: the next call reads it.
		return nil, unreachable(fmt.Sprintf("storing the new certificate authority of cluster %q", cluster), err)
	}
	if txn.Succeeded {
		return a, nil
	}
	// Another pacsd stored one first: that is the cluster's CA.
	kvs := txn.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 {
		return nil, fmt.Errorf("while creating the certificate authority of cluster %q: another pacsd stored one in etcd key %s and it was removed at once; nothing was stored: try again", cluster, k)
	}
	return e.decodeAuthority(cluster, k, kvs[0].Value)
}

// decodeAuthority reads the CA stored at etcd key k.
func (e *Etcd) decodeAuthority(cluster, k string, b []byte) (*certs.Authority, error) {
	damaged := func(why string) error {
		return fmt.Errorf("while reading the certificate authority of cluster %q: %w: etcd key %s %s; pacsd never replaces a cluster's CA by itself: "+
			"put the CA back in that key (a JSON object {\"cert\": PEM, \"key\": PEM}), or delete the key (etcdctl del %s) to have pacsd make a new CA (%s)",
			cluster, ErrAuthorityDamaged, k, why, k, newCA)
	}
	var v storedCA
	if err := decodeStrict(b, &v, "cert", "key"); err != nil {
		return nil, damaged(fmt.Sprintf("is not what pacsd wrote (%v)", err))
	}
	a, err := certs.ParseAuthority([]byte(v.Cert), []byte(v.Key))
	if err != nil {
		return nil, damaged(fmt.Sprintf("holds no usable CA (%v)", err))
	}
	return a, nil
}
