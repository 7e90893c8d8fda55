// Package pgconf renders the files pacsd owns in each node's PGDATA:
// pg_hba.conf (HBA), pacsd.conf with every managed parameter and the
// cluster's settings (Params), the libpq passfile of the replication role
// (Passfile), and the one include line pacsd keeps in postgresql.conf
// (EnsureInclude).
//
// Every function is pure: no I/O, no clock, no randomness. The same input
// gives the same bytes, so a caller can compare a rendered file with the one
// it reads from a container and write only when they differ. Every rendered
// file ends with a newline. Only Passfile's output holds a secret; the other
// files never contain a password (standbys find theirs through the passfile
// named in primary_conninfo).
//
// Values are escaped by one function per syntax: Quote for postgresql.conf,
// ConninfoValue for libpq connection strings (whose quoting differs, see
// there), and pg_hba's double quotes for names in pg_hba.conf.
//
// The package imports only pkg/spec and the standard library.
package pgconf
