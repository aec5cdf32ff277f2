package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table writes aligned columns, rpk style: upper-case headers, two spaces
// between columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(headers) > 0 {
		t.row(anys(headers)...)
	}
	return t
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// row writes one row; cells are formatted with %v, nil as "-".
func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		if c == nil {
			parts[i] = "-"
			continue
		}
		s := fmt.Sprint(c)
		// Tabs and newlines would break the alignment.
		s = strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
		if s == "" {
			s = "-"
		}
		parts[i] = s
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// section writes an rpk-style section title followed by an underline.
func section(w io.Writer, title string) {
	fmt.Fprintln(w, strings.ToUpper(title))
	fmt.Fprintln(w, strings.Repeat("=", len(title)))
}

// writeEach writes out as JSON in json format, else each item with print,
// a blank line between items.
func writeEach[T any](t *tool, out []T, print func(io.Writer, T)) error {
	if t.json() {
		return writeJSON(t.stdout, out)
	}
	for i, v := range out {
		if i > 0 {
			fmt.Fprintln(t.stdout)
		}
		print(t.stdout, v)
	}
	return nil
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// errString is err's message, or "" for nil (for JSON "error" fields).
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// status is "OK" or the error, for result tables.
func status(err error) string {
	if err == nil {
		return "OK"
	}
	return err.Error()
}

// ints formats node ids as "1,2,3".
func ints(ns []int32) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ",")
}

// nonNil returns ns, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](ns []T) []T {
	if ns == nil {
		return []T{}
	}
	return ns
}
