package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/spec"
)

// testCerts returns node n's TLS files in PGDATA as pacsd places them: a
// server certificate from the store's CA for every name n is reached by,
// its key and the CA's certificate.
func testCerts(t testing.TB, store Authorities, c *spec.Cluster, n *spec.Node) map[string][]byte {
	t.Helper()
	return testCertsAt(t, store, c, n, time.Now())
}

// testCertsAt is testCerts issued at now.
func testCertsAt(t testing.TB, store Authorities, c *spec.Cluster, n *spec.Node, now time.Time) map[string][]byte {
	t.Helper()
	a, err := store.Authority(context.Background(), c.Name)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := a.Issue(CertNames(c, n), now, certLifetime(c))
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{ServerCertPath: cert, ServerKeyPath: key, RootCertPath: a.CertPEM()}
}

// planNow is when the plans' observations (converged) are made, so that
// what the golden files say of certificates stays the same.
var planNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// testStore keeps a CA made now, for the executor's tests.
var testStore = &MemoryStore{}

// planCAs keeps the CA of the plans' observations (converged), made a day
// before planNow.
var planCAs = fixedCAs{}

// fixedCAs gives each cluster a CA made a day before planNow.
type fixedCAs map[string]*certs.Authority

func (f fixedCAs) Authority(_ context.Context, cluster string) (*certs.Authority, error) {
	if a, ok := f[cluster]; ok {
		return a, nil
	}
	a, _, err := certs.NewAuthority(cluster, planNow.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	f[cluster] = a
	return a, nil
}

// panicTB is a testing.TB for helpers called without a test: Fatal panics.
type panicTB struct{ testing.TB }

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(args) }

// failingCAs cannot give a CA (etcd does not answer).
type failingCAs struct{}

func (failingCAs) Authority(context.Context, string) (*certs.Authority, error) {
	return nil, errors.New("etcd does not answer")
}

// TestAuthorityUnreadable: a CA that cannot be read makes no verdict on a
// primary (ErrCannotVerify is not "lost"); once one was read, the last one
// serves while the store does not answer, and a CA replaced in the store
// is taken at the next call.
func TestAuthorityUnreadable(t *testing.T) {
	c := testCluster(t, "")
	c.Name = "unreadable-" + t.Name()
	_, err := Deps{CAs: failingCAs{}}.Authority(context.Background(), c)
	if !errors.Is(err, ErrCannotVerify) {
		t.Fatalf("no CA ever read: %v; want ErrCannotVerify", err)
	}
	if lost := LostBecause(nil, err); lost != nil {
		t.Errorf("a primary pacsd cannot verify counts as lost: %v", lost)
	}
	store := &MemoryStore{}
	first, err := Deps{CAs: store}.Authority(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := (Deps{CAs: failingCAs{}}).Authority(context.Background(), c); err != nil || got != first {
		t.Errorf("the store does not answer: %v, %v; want the last CA read", got, err)
	}
	other := &MemoryStore{}
	if got, err := (Deps{CAs: other}).Authority(context.Background(), c); err != nil || got == first {
		t.Errorf("a CA replaced in the store: %v; want the new one", err)
	}
}
