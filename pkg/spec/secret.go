package spec

import (
	"encoding/json"
	"fmt"
)

// Secret holds a password read from the topology file, the environment or a
// password file. It never shows its value: String, GoString, Format and
// MarshalJSON print a redacted placeholder that names only where the value came
// from. Reveal returns the value for the one place that must hand it on.
type Secret struct {
	value  string
	source string
}

// NewSecret returns a Secret holding value; source says where it came from (a
// file path, or a description such as "password attribute") and may be shown.
func NewSecret(value, source string) Secret {
	return Secret{value: value, source: source}
}

// Reveal returns the secret value. Call it only where the value leaves pacsd
// for its destination (a file placed for PostgreSQL, a SCRAM verifier).
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret holds no value.
func (s Secret) IsZero() bool { return s.value == "" && s.source == "" }

// Source says where the value came from, such as the password file's path.
func (s Secret) Source() string { return s.source }

// Equal reports whether two secrets hold the same value, without revealing it.
func (s Secret) Equal(o Secret) bool { return s.value == o.value && s.source == o.source }

// String returns a placeholder that never contains the value.
func (s Secret) String() string {
	if s.IsZero() {
		return "[none]"
	}
	return fmt.Sprintf("[redacted, from %s]", s.source)
}

// GoString returns the same placeholder as String, for %#v.
func (s Secret) GoString() string { return s.String() }

// Format prints the placeholder whatever the verb, so %x or %q cannot leak the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON encodes the placeholder (null for an empty secret), never the value.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(s.String())
}
