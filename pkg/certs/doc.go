// Package certs makes and checks the TLS certificates of a cluster's
// PostgreSQL nodes: a certificate authority per cluster (NewAuthority, or
// an operator's own with ParseAuthority), a server certificate per node
// whose names cover every way the node is reached (Issue), and the test of
// whether a node's certificate can be kept or must be issued anew (Check,
// KeyMatches).
//
// The package is pure apart from randomness: it reads no files, no clock
// (every function that needs the time is given it) and keeps nothing; the
// cluster store keeps each cluster's CA (see package state) and the
// reconcile loop places certificates in PGDATA.
//
// Keys are ECDSA P-256, written as PKCS#8 PEM ("PRIVATE KEY"), which
// PostgreSQL and libpq read. Certificates start five minutes before the
// time given, so that a node whose clock is a little behind accepts them.
package certs
