package console

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"bytesf":   func(f float64) string { return humanBytes(int64(f)) },
	"rate":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"join":     joinInt32,
	"path":     url.PathEscape,
	"query":    url.QueryEscape,
	"duration": func(d time.Duration) string { return d.String() },
	"add":      func(a, b int) int { return a + b },
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func joinInt32(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ",")
}

// fmtRetention prints retention.ms as a duration ("7d", "forever").
func fmtRetention(ms string) string {
	n, err := strconv.ParseInt(ms, 10, 64)
	switch {
	case err != nil:
		return ms
	case n < 0:
		return "forever"
	case n%(24*3600*1000) == 0:
		return fmt.Sprintf("%dd", n/(24*3600*1000))
	case n%(3600*1000) == 0:
		return fmt.Sprintf("%dh", n/(3600*1000))
	}
	return (time.Duration(n) * time.Millisecond).String()
}

// formatBytes shows a key, value or header: text (invalid UTF-8 falls
// back to hex), JSON pretty-printed (text when it is not JSON), or hex.
// The template escapes the result.
func formatBytes(b []byte, format string) string {
	if b == nil {
		return ""
	}
	switch format {
	case "hex":
		return hex.Dump(b)
	case "json":
		var out bytes.Buffer
		if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
			return out.String()
		}
	}
	if !utf8.Valid(b) {
		return hex.Dump(b)
	}
	return string(b)
}
