// Package sqltext is the SQL text pacsd sends that code without pgx needs
// too: the quoting of literals and identifiers, and the quiet transaction
// that keeps a statement carrying a password verifier out of the server's
// log, its statistics and its audit trail. pkg/postgres sends it over pgx;
// the executor in pkg/reconcile runs PasswordScript with psql over a
// container's own socket. It depends on the standard library only.
package sqltext

import (
	"errors"
	"fmt"
	"strings"
)

// How a statement that carries a secret runs, on one session:
//
//	QuietBefore; BEGIN; QuietLocal; <the statement>; COMMIT; QuietAfter
//
// QuietBefore runs before the transaction begins, because PostgreSQL decides
// when a transaction starts whether log_transaction_sample_rate logs all of
// its statements. QuietLocal switches off, for the rest of the transaction,
// every setting that would write a statement's text to the server log
// (log_statement, log_min_duration_statement, log_min_duration_sample,
// log_min_error_statement, debug_print_parse, debug_print_rewritten,
// debug_print_plan), keep it in pg_stat_statements (track_utility) or in
// pgaudit's log; it sets only the parameters the server has (pg_settings),
// so it runs on every supported major version, with or without those
// extensions. QuietAfter restores the session's sampling.
const (
	QuietBefore = "SET log_transaction_sample_rate = 0"
	QuietLocal  = "SELECT count(pg_catalog.set_config(q.name, q.value, true)) FROM (VALUES " +
		"('log_statement', 'none'), " +
		"('log_min_duration_statement', '-1'), " +
		"('log_min_duration_sample', '-1'), " +
		"('log_min_error_statement', 'panic'), " +
		"('debug_print_parse', 'off'), " +
		"('debug_print_rewritten', 'off'), " +
		"('debug_print_plan', 'off'), " +
		"('pg_stat_statements.track_utility', 'off'), " +
		"('pgaudit.log', 'none')" +
		") AS q(name, value) JOIN pg_catalog.pg_settings s ON s.name = q.name"
	QuietAfter = "RESET log_transaction_sample_rate"
)

// Literal quotes s as an SQL string literal, correct whatever
// standard_conforming_strings says: quotes are doubled, and a string with a
// backslash becomes an E-prefixed literal with its backslashes doubled (as
// libpq's PQescapeLiteral does). NUL bytes cannot be sent and are refused.
// It is the one quoting function for values that cannot travel as bind
// parameters.
func Literal(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", errors.New("a literal cannot hold a NUL byte")
	}
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q, nil
}

// Ident quotes s as an SQL identifier the way pgx.Identifier.Sanitize does
// (a test holds them equal), for code that does not link pgx; unlike
// Sanitize, which drops NUL bytes and so would name another object, it
// refuses them, and an empty name.
func Ident(s string) (string, error) {
	if s == "" {
		return "", errors.New("an identifier cannot be empty")
	}
	if strings.ContainsRune(s, 0) {
		return "", errors.New("an identifier cannot hold a NUL byte")
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`, nil
}

// scramPrefix starts every SCRAM-SHA-256 verifier.
const scramPrefix = "SCRAM-SHA-256$"

// PasswordScript returns a psql script that sets the password of role to
// verifier in a quiet transaction (see QuietBefore): neither the verifier
// nor the statement that carries it reaches the server log. verifier must be
// a SCRAM-SHA-256 verifier; anything else (a plain password) is refused, and
// the error never quotes it. The script is meant for psql -f with
// ON_ERROR_STOP; psql does not interpolate its variables inside the quoted
// literal and identifier.
func PasswordScript(role, verifier string) ([]byte, error) {
	if !strings.HasPrefix(verifier, scramPrefix) {
		return nil, fmt.Errorf("while setting the password of role %q: it is not a SCRAM-SHA-256 verifier; it is not sent", role)
	}
	name, err := Ident(role)
	if err != nil {
		return nil, fmt.Errorf("while setting the password of role %q: %w", role, err)
	}
	lit, err := Literal(verifier)
	if err != nil {
		return nil, fmt.Errorf("while setting the password of role %q: the verifier: %w", role, err)
	}
	var b strings.Builder
	for _, s := range []string{QuietBefore, "BEGIN", QuietLocal, "ALTER ROLE " + name + " PASSWORD " + lit, "COMMIT", QuietAfter} {
		b.WriteString(s + ";\n")
	}
	return []byte(b.String()), nil
}
