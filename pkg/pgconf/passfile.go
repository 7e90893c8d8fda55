package pgconf

import (
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Passfile renders the libpq password file of the replication role, to be
// placed with mode 0600: one line "*:*:*:<user>:<password>" (any host, port
// and database), with ":" and "\" escaped by a backslash. It is the only
// rendered file that holds a secret; callers must never print it. It is nil
// when the cluster has no replication password (a cluster of one node needs
// none). libpq reads the file line by line, so a password holding a line
// break cannot be written; such a password does not authenticate.
func Passfile(c *spec.Cluster) []byte {
	return passfile(c.Replication.User, c.Replication.Password.Reveal())
}

// SuperuserPassfile renders a libpq passfile for the superuser, for the
// one-off containers that connect as it (pg_rewind). It is a secret.
func SuperuserPassfile(c *spec.Cluster) []byte {
	return passfile(c.Superuser.Name, c.Superuser.Password.Reveal())
}

func passfile(user, pw string) []byte {
	if pw == "" {
		return nil
	}
	return []byte("*:*:*:" + passfileField(user) + ":" + passfileField(pw) + "\n")
}

// passfileField escapes a field of a libpq password file.
func passfileField(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}
