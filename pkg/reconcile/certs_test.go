package reconcile

import (
	"context"
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
