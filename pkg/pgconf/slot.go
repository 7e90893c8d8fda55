package pgconf

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// slotPrefix marks the replication slots pacsd creates, so that they can be
// told apart from slots made by others.
const slotPrefix = "pacsd_"

// maxSlotName is PostgreSQL's limit on a slot name (NAMEDATALEN - 1).
const maxSlotName = 63

// SlotName returns the name of the physical replication slot that the primary
// keeps for the standby node of cluster: "pacsd_<cluster>_<node>", lower
// case, with every byte outside [a-z0-9_] replaced by "_". The result is
// deterministic and always a valid slot name (only [a-z0-9_], at most 63
// bytes). When the plain form would lose information (a byte was replaced or
// lower-cased, so that "a-b" and "a_b" would meet) or is too long, it is cut
// to leave room for "_" and eight hexadecimal digits of a SHA-256 of cluster
// and node, which keeps the distinct nodes of one cluster apart (slots live
// on one cluster's servers only). The names must never change from one pacsd
// version to the next: existing slots are found by them.
func SlotName(cluster, node string) string {
	plain := slotPrefix + cluster + "_" + node
	var b strings.Builder
	b.Grow(len(plain))
	lossy := false
	for i := 0; i < len(plain); i++ {
		c := plain[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
			lossy = true
		default:
			b.WriteByte('_')
			lossy = true
		}
	}
	name := b.String()
	if !lossy && len(name) <= maxSlotName {
		return name
	}
	sum := sha256.Sum256([]byte(cluster + "\x00" + node))
	suffix := "_" + hex.EncodeToString(sum[:4])
	if len(name) > maxSlotName-len(suffix) {
		name = name[:maxSlotName-len(suffix)]
	}
	return name + suffix
}
