package pgconf

import (
	"bytes"
	"strings"
)

// IncludeLine is the one line pacsd keeps at the end of postgresql.conf. It
// includes pacsd.conf last, so that pacsd's parameters win over any earlier
// line of postgresql.conf (ALTER SYSTEM's postgresql.auto.conf is read later
// still; pacsd resets overrides there as drift).
const IncludeLine = "include_if_exists = 'pacsd.conf'  # managed by pacsd; do not remove"

// EnsureInclude returns conf, the content of postgresql.conf, with exactly
// one IncludeLine, as its last line, and whether that changed anything.
//
// Every other line that includes pacsd.conf is removed: duplicates, edited
// variants (include instead of include_if_exists, other spacing or quotes, a
// path, another comment) and commented-out ones. A line counts as such when,
// after leading blanks and "#" signs, it starts with "include" (any case) and
// mentions pacsd.conf. Everything else is kept byte for byte, including line
// endings; a last line without a newline gets one. The result ends with
// IncludeLine and a newline, and EnsureInclude of the result changes nothing.
func EnsureInclude(conf []byte) ([]byte, bool) {
	out := make([]byte, 0, len(conf)+len(IncludeLine)+2)
	for rest := conf; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if includesPacsdConf(line) {
			continue
		}
		out = append(out, line...)
		if line[len(line)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	out = append(out, IncludeLine+"\n"...)
	return out, !bytes.Equal(out, conf)
}

// includesPacsdConf reports whether line is an include of pacsd.conf,
// possibly commented out.
func includesPacsdConf(line []byte) bool {
	s := strings.TrimLeft(string(line), " \t#")
	return len(s) >= len("include") && strings.EqualFold(s[:len("include")], "include") &&
		strings.Contains(s, "pacsd.conf")
}
