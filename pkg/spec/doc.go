// Package spec turns a pacsd topology file (HCL) into a *File and hcl.Diagnostics.
//
// The language is described in the design document, section 2: any number of
// cluster blocks (image, network, primary, superuser, database, replication,
// settings, access, role, clients, failover, node), host blocks for remote
// Docker engines, and at most one daemon block. Paths are relative to the file;
// env("NAME") and file("path") are available in expressions.
//
// A daemon block with an etcd block (section 10) makes the file one of pacsd
// on every host (File.EveryHost): the same file on every host, each pacsd
// driving only its own host's engine and coordinating through etcd. Every
// node then names a host block, a host block's docker attribute is optional,
// and failover.ttl is the primary's lease.
//
// A daemon.listen address that is not loopback needs a daemon.tls block
// (pacsd's HTTP endpoints are then served over HTTPS) and a way to
// authenticate their clients: daemon.token_file (the token is a Secret) or
// daemon.tls.client_ca.
//
// Parse and ParseFile are pure apart from reading the files a topology names
// (password files, TLS material, file()) and the environment (env()). They
// return every diagnostic at once; a *File is returned only when there is no
// error, with every default filled in, so that what pacsd will do is visible in
// the parsed value. CheckAgainstPrevious compares two valid files with the
// state pacsd observed, for the checks that need more than one file.
//
// Passwords are held in Secret values, which never print or marshal their
// content; Secret.Reveal is the one way to read them.
//
// The package imports only hcl/v2, go-cty and the standard library.
package spec
