package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "''",
		"SCRAM-SHA-256$4096": "'SCRAM-SHA-256$4096'",
		"it's":               "'it''s'",
		`a\b'c`:              `E'a\\b''c'`,
	} {
		got, err := quoteLiteral(in)
		if err != nil || got != want {
			t.Errorf("quoteLiteral(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := quoteLiteral("a\x00b"); err == nil {
		t.Errorf("quoteLiteral(NUL) = %q, want an error", got)
	}
}

func TestRoleStatements(t *testing.T) {
	const v = "SCRAM-SHA-256$4096:c2FsdA==$a:b"
	for _, tc := range []struct {
		name       string
		r          reconcile.RoleSpec
		cur        reconcile.RoleState
		exists     bool
		want       []string
		wantSecret bool
	}{{
		name: "create",
		r:    reconcile.RoleSpec{Name: "replicator", Login: true, Replication: true, Verifier: v, MemberOf: []string{"pg_monitor"}},
		want: []string{
			`CREATE ROLE "replicator" WITH LOGIN REPLICATION NOSUPERUSER PASSWORD '` + v + `'`,
			`GRANT "pg_monitor" TO "replicator"`,
		},
		wantSecret: true,
	}, {
		name:   "matches",
		r:      reconcile.RoleSpec{Name: "r", Login: true, Verifier: v, MemberOf: []string{"a"}},
		cur:    reconcile.RoleState{Login: true, Verifier: v, MemberOf: []string{"a", "b"}},
		exists: true,
	}, {
		name:   "attributes only",
		r:      reconcile.RoleSpec{Name: `we"ird`, Superuser: true},
		cur:    reconcile.RoleState{Login: true, Verifier: v},
		exists: true,
		want:   []string{`ALTER ROLE "we""ird" WITH NOLOGIN NOREPLICATION SUPERUSER`},
	}, {
		name:       "password only",
		r:          reconcile.RoleSpec{Name: "r", Login: true, Verifier: v},
		cur:        reconcile.RoleState{Login: true, Verifier: "md5abc"},
		exists:     true,
		want:       []string{`ALTER ROLE "r" WITH LOGIN NOREPLICATION NOSUPERUSER PASSWORD '` + v + `'`},
		wantSecret: true,
	}, {
		name:   "membership only",
		r:      reconcile.RoleSpec{Name: "r", MemberOf: []string{"a", "b"}},
		cur:    reconcile.RoleState{MemberOf: []string{"a"}},
		exists: true,
		want:   []string{`GRANT "b" TO "r"`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, secret, err := roleStatements(tc.r, tc.cur, tc.exists)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statements (-want +got):\n%s", diff)
			}
			if secret != tc.wantSecret {
				t.Errorf("secret = %v, want %v", secret, tc.wantSecret)
			}
		})
	}
}

func TestSettingName(t *testing.T) {
	for name, ok := range map[string]bool{
		"work_mem": true, "Shared_Buffers": true, "pg_stat_statements.max": true,
		"": false, "work mem": false, "a;b": false, `a"b`: false, ".x": false, "x.": false, "1x": false,
	} {
		if got := settingName.MatchString(name); got != ok {
			t.Errorf("settingName.MatchString(%q) = %v, want %v", name, got, ok)
		}
	}
}

// TestConnectErrors checks refusals before any network traffic and that a
// failed connection names address and user but not the password.
func TestConnectErrors(t *testing.T) {
	d := New()
	pw := spec.NewSecret("hunter2-secret", "test")
	for _, addr := range []string{"nohost", "host:", "host:99999", ":5432"} {
		_, err := d.Connect(context.Background(), addr, "pacs", pw, "pacsdb")
		if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "pacs") {
			t.Errorf("Connect(%q) error = %v, want one naming address and user", addr, err)
		}
	}
	// Nothing listens on port 1 of the loopback address.
	_, err := d.Connect(context.Background(), "127.0.0.1:1", "pacs", pw, "pacsdb")
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "pacs") || strings.Contains(msg, "hunter2") {
		t.Errorf("Connect error = %q, want address and user named and no password", msg)
	}
}
