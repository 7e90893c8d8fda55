package pgconf

import (
	"fmt"
	"strings"
)

// Quote returns s as a single-quoted postgresql.conf string: a single quote
// is doubled, a backslash is escaped, and line breaks, tabs and other control
// characters are written as backslash escapes (\n, \r, \t, \b, \f, or three
// octal digits), so that the value always stays on its own line and reads
// back as s. A NUL byte cannot be represented: PostgreSQL ends the value
// there. It is the one escaper for values of postgresql.conf and pacsd.conf.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\%03o`, c)
				continue
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// ConninfoValue returns s as a value of a libpq connection string
// ("keyword=value"): bare when it is not empty and holds no white space,
// single quote or backslash, otherwise in single quotes with \' and \\.
//
// It exists beside Quote because libpq's rules differ from postgresql.conf's:
// libpq ends a quoted value at the first unescaped single quote, so Quote's
// doubled single quote would cut the value short. A connection string that
// goes into postgresql.conf (primary_conninfo) is escaped twice: each value
// with ConninfoValue, then the whole string with Quote.
func ConninfoValue(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\v\f\r'\\") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\'' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// hbaKeywords are the words pg_hba.conf reads with a special meaning in the
// database, user or address column when they are not quoted.
var hbaKeywords = map[string]bool{
	"all": true, "sameuser": true, "samerole": true, "samegroup": true, "replication": true,
	"samehost": true, "samenet": true,
}

// hbaName returns a database or role name as a pg_hba.conf token: bare when
// pg_hba reads it as that name, otherwise in double quotes with a double quote
// doubled. Quoting is needed for keywords (all, replication, ...), names
// starting with "+" (group membership), "@" (file inclusion) or "/" (regular
// expression), and names holding blanks, commas, "#" or double quotes. A line
// break cannot be represented (pg_hba.conf is read line by line); the spec
// refuses names with one.
func hbaName(name string) string {
	if name != "" && !hbaKeywords[name] && !strings.ContainsAny(name[:1], "+@/") &&
		!strings.ContainsAny(name, " \t\r\n,#\"") {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
