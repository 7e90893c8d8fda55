package reconcile

import (
	"encoding/binary"
	"testing"
)

func TestParseControl(t *testing.T) {
	// The head of a real PostgreSQL 15 pg_control ("in production",
	// latest checkpoint 0/155F238, timeline 1, pg_control version 1300).
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint64(b[0:], 7712238417585004573)
	le.PutUint32(b[8:], 1300)
	le.PutUint32(b[12:], 202209061)
	le.PutUint32(b[16:], 6)
	le.PutUint64(b[32:], 0x155F238)
	le.PutUint64(b[40:], 0x155F238)
	le.PutUint32(b[48:], 1)
	c, err := ParseControl(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != DBInProduction || c.Checkpoint != 0x155F238 || c.Timeline != 1 || !c.WasPrimary() {
		t.Errorf("ParseControl = %+v (%s)", c, c.State)
	}
	if FormatLSN(c.Checkpoint) != "0/155F238" {
		t.Errorf("FormatLSN = %s", FormatLSN(c.Checkpoint))
	}
	le.PutUint32(b[16:], 2)
	if c, _ := ParseControl(b); c.WasPrimary() || c.State.String() != "shut down in recovery" {
		t.Errorf("a standby's control file reads as %+v", c)
	}
	le.PutUint32(b[8:], 942)
	if _, err := ParseControl(b); err == nil {
		t.Error("a pg_control of version 942 (PostgreSQL 9.x) was read")
	}
	if _, err := ParseControl(b[:20]); err == nil {
		t.Error("a short pg_control was read")
	}
}
