package sqltext

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

func TestLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "''",
		"SCRAM-SHA-256$4096": "'SCRAM-SHA-256$4096'",
		"it's":               "'it''s'",
		`a\b'c`:              `E'a\\b''c'`,
	} {
		got, err := Literal(in)
		if err != nil || got != want {
			t.Errorf("Literal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := Literal("a\x00b"); err == nil {
		t.Errorf("Literal(NUL) = %q, want an error", got)
	}
}

// TestIdentAsPgx: Ident quotes as pgx.Identifier.Sanitize does.
func TestIdentAsPgx(t *testing.T) {
	for _, s := range []string{"pacs", "Pacs", `we"ird`, `""`, "a b", "rôle", "x'y", `back\slash`, "semi;colon", ":var"} {
		got, err := Ident(s)
		if err != nil {
			t.Fatalf("Ident(%q): %v", s, err)
		}
		if want := (pgx.Identifier{s}).Sanitize(); got != want {
			t.Errorf("Ident(%q) = %s, pgx quotes %s", s, got, want)
		}
	}
	for _, s := range []string{"", "a\x00b"} {
		if got, err := Ident(s); err == nil {
			t.Errorf("Ident(%q) = %s, want an error", s, got)
		}
	}
}

func TestPasswordScript(t *testing.T) {
	const v = "SCRAM-SHA-256$4096:c2FsdA==$a:b"
	got, err := PasswordScript(`pa"cs`, v)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"SET log_transaction_sample_rate = 0;",
		"BEGIN;",
		QuietLocal + ";",
		`ALTER ROLE "pa""cs" PASSWORD '` + v + `';`,
		"COMMIT;",
		"RESET log_transaction_sample_rate;",
	}
	if d := cmp.Diff(want, strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")); d != "" {
		t.Errorf("script (-want +got):\n%s", d)
	}
	for _, bad := range []struct{ role, verifier string }{
		{"pacs", "plain-s3cret"},
		{"pacs", "md5abcdef"},
		{"", v},
		{"pacs", v + "\x00"},
	} {
		_, err := PasswordScript(bad.role, bad.verifier)
		if err == nil {
			t.Errorf("PasswordScript(%q, %q) succeeded", bad.role, bad.verifier)
		} else if strings.Contains(err.Error(), bad.verifier) {
			t.Errorf("PasswordScript's error %q quotes the password", err)
		}
	}
}
