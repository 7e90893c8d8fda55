// Package postgres implements reconcile.Database over pgx: it reads what a
// PostgreSQL server reports about itself (version, recovery, timeline,
// settings, roles, slots, replication) and makes the few changes pacsd makes
// through SQL (roles, physical replication slots, ALTER SYSTEM resets,
// configuration reloads).
//
// Passwords reach the server as SCRAM-SHA-256 verifiers only (see Verifier in
// scram.go, which depends on the standard library alone), and the statement
// that carries a verifier runs in a transaction whose statements the server
// neither logs (statement, duration, sampling, error and debug logging) nor
// keeps (pg_stat_statements, pgaudit), so neither a password nor its verifier
// lands in the server log. That SQL text lives in the subpackage sqltext,
// which the executor's password reset over a container's socket shares.
// Identifiers are quoted with pgx.Identifier.Sanitize; literals with one
// quoting function, sqltext.Literal.
//
// Connections use TLS verified as libpq's sslmode=verify-full does: the
// context carries the name the server's certificate must carry and the CA
// it must chain to (reconcile.Peer); without one, Connect refuses, and it
// never falls back to clear text. Errors name the server's address and, for
// connections, the user, never a password.
//
// A Database keeps one idle connection per address, user, database and
// password (idle.go; the password as its SHA-256 only) for a minute, so that
// a reconcile pass or a health check does not pay a TCP connection and a
// SCRAM exchange per node each time. A kept connection whose first use
// breaks it (a server restarted) is replaced within the same call; one that
// saw an error or carried a verifier is closed, never kept. State reads a
// server's state in one round trip (one batch), Health in one statement.
package postgres
