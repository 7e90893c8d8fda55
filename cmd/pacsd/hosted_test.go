package main

import (
	"strings"
	"testing"

	"github.com/pacsd/pacsd/pkg/spec"
)

// TestEtcdTLS: the etcd block's tls files become a client configuration
// that verifies the members with the CA and presents pacsd's certificate;
// files that are not what they say are refused with the attribute named.
func TestEtcdTLS(t *testing.T) {
	prepareExampleSecrets(t)
	tc, err := etcdTLS(&spec.TLS{CA: "../../examples/secrets/etcd-ca.pem", Cert: "../../examples/secrets/pacsd-etcd.pem", Key: "../../examples/secrets/pacsd-etcd-key.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificates) != 1 || tc.RootCAs == nil || tc.InsecureSkipVerify {
		t.Errorf("client TLS configuration: %d certificates, roots %v, insecure %v", len(tc.Certificates), tc.RootCAs != nil, tc.InsecureSkipVerify)
	}
	_, err = etcdTLS(&spec.TLS{CA: "../../examples/secrets/pacs.password", Cert: "../../examples/secrets/pacsd-etcd.pem", Key: "../../examples/secrets/pacsd-etcd-key.pem"})
	if err == nil || !strings.Contains(err.Error(), "daemon.etcd.tls.ca") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
	_, err = etcdTLS(&spec.TLS{CA: "../../examples/secrets/etcd-ca.pem", Cert: "../../examples/secrets/pacsd-etcd.pem", Key: "../../examples/secrets/pacs.password"})
	if err == nil || !strings.Contains(err.Error(), "daemon.etcd.tls") {
		t.Errorf("a key file that is no key: %v", err)
	}
}

// TestRunEveryHostNeedsHost: with pacsd on every host, run refuses to start
// without --host (or PACSD_HOST) naming a host block, and says how.
func TestRunEveryHostNeedsHost(t *testing.T) {
	prepareExampleSecrets(t)
	f, diags := spec.ParseFile("../../examples/every-host.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := checkHost(f, ""); err == nil || !strings.Contains(err.Error(), "--host NAME or PACSD_HOST=NAME") {
		t.Errorf("no host: %v", err)
	}
	if err := checkHost(f, "z"); err == nil || !strings.Contains(err.Error(), `"z" names no host block`) {
		t.Errorf("unknown host: %v", err)
	}
	if err := checkHost(f, "b"); err != nil {
		t.Errorf("host b: %v", err)
	}
	if got := hostOf("", func(k string) string { return map[string]string{"PACSD_HOST": "c"}[k] }); got != "c" {
		t.Errorf("hostOf from PACSD_HOST: %q", got)
	}
	for _, cmd := range []string{"plan", "apply"} {
		code, _, stderr := runCLI(t, nil, cmd, "-f", "../../examples/every-host.hcl")
		if code != exitProblem || !strings.Contains(stderr, "is not available in that mode yet") {
			t.Errorf("pacsd %s with daemon.etcd: exit %d, %s", cmd, code, stderr)
		}
	}
	code, _, stderr := runCLI(t, nil, "switchover", "-f", "../../examples/every-host.hcl", "db2")
	if code != exitProblem || !strings.Contains(stderr, "edit primary in the file on every host") {
		t.Errorf("pacsd switchover with daemon.etcd: exit %d, %s", code, stderr)
	}
}
