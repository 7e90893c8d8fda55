package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// secretAttrs are the attributes every block that takes a password accepts.
var secretAttrs = []hcl.AttributeSchema{{Name: "password"}, {Name: "password_file"}}

// decodeSecret decodes the password or password_file attribute of a block.
// owner names what the password belongs to, for the diagnostics ("the superuser
// of cluster \"pacs\""). It reports whether a password was given without error.
func (d *decoder) decodeSecret(attrs hcl.Attributes, owner string) (Secret, bool) {
	pw, hasPW := attrs["password"]
	pf, hasPF := attrs["password_file"]
	if hasPW && hasPF {
		second := pf
		if pf.Range.Start.Byte < pw.Range.Start.Byte {
			second = pw
		}
		d.errorf(second.NameRange, "Conflicting Password Attributes",
			"The password of %s is given both by password and by password_file. Keep one: password_file (a file readable only by pacsd) is the safer choice.", owner)
		return Secret{}, false
	}
	switch {
	case hasPW:
		if call, ok := pw.Expr.(*hclsyntax.FunctionCallExpr); ok && call.Name == "file" && len(call.Args) == 1 && !call.ExpandFinal {
			// password = file("path") is read like password_file.
			var path string
			d.attr = "password"
			if !d.evalString(call.Args[0], &path) {
				return Secret{}, false
			}
			return d.secretFromFile(pw.Expr.Range(), path, owner)
		}
		var text string
		// file() inside a longer expression checks the file's mode too.
		saved := d.ctx
		d.ctx = d.secretCtx
		attr := d.str(attrs, "password", &text)
		d.ctx = saved
		if attr == nil {
			return Secret{}, false
		}
		if text == "" {
			d.errorf(pw.Expr.Range(), "Empty Password", "The password of %s is empty. Give a password; PostgreSQL refuses empty passwords for scram-sha-256.", owner)
			return Secret{}, false
		}
		if !d.checkPasswordText(pw.Expr.Range(), text, owner) {
			return Secret{}, false
		}
		if !usesFunction(pw.Expr) {
			d.warnf(pw.Expr.Range(), "Password Written in the File",
				"The password of %s is written in the topology file, where everyone who can read the file or its backups sees it. Put it in a file readable only by pacsd and use password_file, or use password = env(\"NAME\").", owner)
		}
		return NewSecret(text, "the password attribute"), true
	case hasPF:
		var path string
		if d.str(attrs, "password_file", &path) == nil {
			return Secret{}, false
		}
		return d.secretFromFile(pf.Expr.Range(), path, owner)
	}
	return Secret{}, false
}

// secretFromFile reads a password from the file at path (password_file, or
// password = file(path)): mode 0600 or 0400, trailing line breaks dropped,
// no line break or NUL inside. rng is where the path is written.
func (d *decoder) secretFromFile(rng hcl.Range, path, owner string) (Secret, bool) {
	b, ok := d.readPrivateFile(rng, path, "Password File")
	if !ok {
		return Secret{}, false
	}
	text := trimLineEnds(string(b))
	if text == "" {
		d.errorf(rng, "Empty Password File", "The password file %q of %s is empty. Write the password into it (a trailing newline is ignored).", path, owner)
		return Secret{}, false
	}
	if !d.checkPasswordText(rng, text, owner) {
		return Secret{}, false
	}
	return NewSecret(text, path), true
}

// trimLineEnds drops the line breaks at the end of a password file's content.
func trimLineEnds(s string) string { return strings.TrimRight(s, "\r\n") }

// checkPasswordText refuses a password holding a line break or NUL: the
// passfile, connection strings and PostgreSQL's own clients cannot carry it,
// so it could never authenticate. The detail never shows the password.
func (d *decoder) checkPasswordText(rng hcl.Range, text, owner string) bool {
	if !strings.ContainsAny(text, "\n\r\x00") {
		return true
	}
	d.errorf(rng, "Invalid Character in Password",
		"The password of %s holds a line break or NUL character (a file's trailing line breaks are dropped, but not those inside, and a heredoc always ends with one). PostgreSQL's password file and connection strings cannot carry it, so the password could never authenticate. Write the password on one line.", owner)
	return false
}

// evalString evaluates expr to a string into dst, reporting why not.
func (d *decoder) evalString(expr hcl.Expression, dst *string) bool {
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return false
	}
	cv, err := convert.Convert(v, cty.String)
	if err != nil || cv.IsNull() {
		d.errorf(expr.Range(), "Incorrect Attribute Value Type", "The argument of file() must be a path, such as \"secrets/pacs.password\".")
		return false
	}
	*dst = cv.AsString()
	return true
}

// readPrivateFile reads a file that must exist, be a regular file and be
// readable by its owner only (mode 0600 or 0400). kind names the file in
// summaries ("Password File", "TLS Key").
func (d *decoder) readPrivateFile(rng hcl.Range, path, kind string) ([]byte, bool) {
	full := d.resolve(path)
	st, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(rng, kind+" Not Found", "The file %q does not exist (looked for %s; relative paths are relative to the topology file). Create it with mode 0600, or correct the path.", path, full)
		return nil, false
	case err != nil:
		d.errorf(rng, "Cannot Read "+kind, "pacsd could not read %q: %s. Check the path and that pacsd may read the file.", path, err)
		return nil, false
	case !st.Mode().IsRegular():
		d.errorf(rng, kind+" Is Not a Regular File", "%q is not a regular file. Point to a plain file that holds only the secret.", path)
		return nil, false
	case st.Mode().Perm()&0o077 != 0:
		d.errorf(rng, kind+" Readable by Others", "The file %q has mode %04o, so other users of this machine can read or change it. Run \"chmod 600 %s\" and validate again.", path, st.Mode().Perm(), full)
		return nil, false
	}
	b, err := readSmallFile(full)
	if err != nil {
		d.errorf(rng, "Cannot Read "+kind, "pacsd could not read %q: %s. Check that pacsd may read the file.", path, err)
		return nil, false
	}
	return b, true
}

// unwrapPathError gives the short reason of a file error ("no such file or directory").
func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return fmt.Sprint(err)
}
