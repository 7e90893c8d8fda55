// Package jsonl reads and appends files of JSON values, one a line: the rows
// `make bench` records and the fault runs `make faults` records, each
// appended by a test as it ends and read by the table printer at the end.
package jsonl

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Append encodes each value as one line of JSON and appends the lines to
// the file at path (created when missing) in one write.
func Append[T any](path string, values ...T) error {
	var lines []byte
	for _, v := range values {
		line, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("while encoding a line for %s: %w", path, err)
		}
		lines = append(append(lines, line...), '\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(lines); err != nil {
		f.Close()
		return fmt.Errorf("while appending to %s: %w", path, err)
	}
	return f.Close()
}

// Read decodes every non-empty line of r as a T; what is the name of a T in
// errors ("row"). check, when not nil, refuses a value it finds wrong with
// an error that completes "line N is ..." ("a row without an id"). An error
// names the line.
func Read[T any](r io.Reader, what string, check func(T) error) ([]T, error) {
	var out []T
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("line %d is not a %s: %w", n, what, err)
		}
		if check != nil {
			if err := check(v); err != nil {
				return nil, fmt.Errorf("line %d is %w", n, err)
			}
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("while reading %ss: %w", what, err)
	}
	return out, nil
}
