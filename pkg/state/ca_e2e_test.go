package state_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/state"
)

// TestE2EEtcdAuthority: the pacsd of several hosts that ask for a
// cluster's CA at once end with one CA, kept in one etcd key; a damaged
// CA is an error naming the key and is left as it is; a deleted one is
// made anew.
func TestE2EEtcdAuthority(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	ctx := context.Background()
	stores := []*state.Etcd{openEtcd(t, ep, "a"), openEtcd(t, ep, "b"), openEtcd(t, ep, "c")}

	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([][]byte, 2*len(stores))
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() {
			<-start
			a, err := stores[i%len(stores)].Authority(ctx, "pacs")
			if err == nil {
				got[i] = a.CertPEM()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("callers 0 and %d got different CAs", i)
		}
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: ep})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const key = "/pacsd-test/clusters/pacs/ca"
	stored := func() []byte {
		t.Helper()
		resp, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("etcd key %s: %d keys", key, len(resp.Kvs))
		}
		return resp.Kvs[0].Value
	}
	var v struct{ Cert, Key string }
	if err := json.Unmarshal(stored(), &v); err != nil {
		t.Fatalf("etcd key %s: %v", key, err)
	}
	if v.Cert != string(got[0]) || !certs.KeyMatches([]byte(v.Cert), []byte(v.Key)) {
		t.Fatalf("etcd key %s does not hold the CA returned and its key", key)
	}
	// A pacsd started later reads it.
	later, err := openEtcd(t, ep, "d").Authority(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(later.CertPEM(), got[0]) {
		t.Error("a pacsd started later got another CA")
	}
	names := []string{"pacs-db1", "db"}
	cert, _, err := later.Issue(names, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := certs.Check(cert, got[0], names, time.Now(), 0); !ok {
		t.Errorf("a certificate of the CA read back: %s", why)
	}
	other, err := stores[0].Authority(ctx, "archive")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.CertPEM(), got[0]) {
		t.Error("two clusters share one CA")
	}

	_, anotherKey, err := certs.NewAuthority("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mismatched, err := json.Marshal(map[string]string{"cert": v.Cert, "key": string(anotherKey)})
	if err != nil {
		t.Fatal(err)
	}
	notCA, err := json.Marshal(map[string]string{"cert": "garbage", "key": v.Key})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "{", "null", `{"cert":"x"}`, `{"cert":"x","key":"y","extra":1}`, string(notCA), string(mismatched)} {
		if _, err := cli.Put(ctx, key, bad); err != nil {
			t.Fatal(err)
		}
		_, err := stores[1].Authority(ctx, "pacs")
		if !errors.Is(err, state.ErrAuthorityDamaged) || !strings.Contains(err.Error(), "etcd key "+key+" ") || !strings.Contains(err.Error(), "etcdctl del "+key) {
			t.Errorf("Authority with %q stored: %v, want ErrAuthorityDamaged naming the key and saying what to do", bad, err)
		}
		if after := string(stored()); after != bad {
			t.Errorf("the damaged CA %q was replaced by %q", bad, after)
		}
	}

	// Deleted by the operator: a new CA is made.
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	renewed, err := stores[2].Authority(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(renewed.CertPEM(), got[0]) {
		t.Error("the deleted CA came back")
	}
	if _, err := stores[0].Authority(ctx, "../x"); err == nil {
		t.Error("a cluster name with a slash named an etcd key")
	}
}
