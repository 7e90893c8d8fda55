package jsonl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type item struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

func TestAppendAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "items.jsonl")
	if err := Append(path, item{"a", 1}); err != nil {
		t.Fatal(err)
	}
	if err := Append(path, item{"b", 2}, item{"c", 3}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Read[item](f, "item", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]item{{"a", 1}, {"b", 2}, {"c", 3}}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestReadRefuses(t *testing.T) {
	noID := func(i item) error {
		if i.ID == "" {
			return errors.New("an item without an id")
		}
		return nil
	}
	for in, want := range map[string]string{
		"{\"id\":\"a\"}\n\nnot json\n": "line 3 is not a item",
		"{\"id\":\"a\"}\n{\"n\":2}\n":  "line 2 is an item without an id",
	} {
		if _, err := Read(strings.NewReader(in), "item", noID); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%q) = %v, want an error holding %q", in, err, want)
		}
	}
	if err := Append(filepath.Join(t.TempDir(), "no", "such", "dir"), item{}); err == nil {
		t.Error("Append into a missing directory succeeded")
	}
}
