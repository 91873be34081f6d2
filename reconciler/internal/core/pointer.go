package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidPointer is wrapped when a JSON pointer does not follow RFC 6901.
var ErrInvalidPointer = errors.New("invalid JSON pointer")

// ParsePointer splits an RFC 6901 JSON pointer ("/spec/replicas", "/metadata/labels/app.kubernetes.io~1name")
// into unescaped tokens. The empty pointer "" is the whole document (no tokens).
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%w %q: must be empty or start with '/'", ErrInvalidPointer, p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		s = strings.ReplaceAll(s, "~1", "/")
		parts[i] = strings.ReplaceAll(s, "~0", "~")
	}
	return parts, nil
}

// FormatPointer is the inverse of ParsePointer.
func FormatPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

// GetPointer returns the value at tokens inside doc.
func GetPointer(doc any, tokens []string) (any, bool) {
	cur := doc
	for _, t := range tokens {
		switch v := cur.(type) {
		case map[string]any:
			n, ok := v[t]
			if !ok {
				return nil, false
			}
			cur = n
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// RemovePointer deletes the value at tokens from doc (in place) and reports whether it was there.
// Removing the root is not possible and reports false.
func RemovePointer(doc any, tokens []string) bool {
	if len(tokens) == 0 {
		return false
	}
	parent, ok := GetPointer(doc, tokens[:len(tokens)-1])
	if !ok {
		return false
	}
	last := tokens[len(tokens)-1]
	switch v := parent.(type) {
	case map[string]any:
		if _, ok := v[last]; !ok {
			return false
		}
		delete(v, last)
		return true
	case []any:
		// A slice cannot shrink in place: store the shortened copy in the grandparent.
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(v) {
			return false
		}
		if len(tokens) < 2 {
			return false
		}
		gp, ok := GetPointer(doc, tokens[:len(tokens)-2])
		if !ok {
			return false
		}
		nv := append(append([]any{}, v[:i]...), v[i+1:]...)
		switch g := gp.(type) {
		case map[string]any:
			g[tokens[len(tokens)-2]] = nv
		case []any:
			j, _ := strconv.Atoi(tokens[len(tokens)-2])
			g[j] = nv
		}
		return true
	}
	return false
}

// SetPointer sets the value at tokens inside doc (in place), creating intermediate maps. It fails
// when an intermediate value is not a map or a list index is out of range.
func SetPointer(doc map[string]any, tokens []string, value any) error {
	if len(tokens) == 0 {
		return fmt.Errorf("%w: cannot set the document root", ErrInvalidPointer)
	}
	var cur any = doc
	for i, t := range tokens[:len(tokens)-1] {
		switch v := cur.(type) {
		case map[string]any:
			n, ok := v[t]
			if !ok {
				n = map[string]any{}
				v[t] = n
			}
			cur = n
		case []any:
			j, err := strconv.Atoi(t)
			if err != nil || j < 0 || j >= len(v) {
				return fmt.Errorf("%w: %s: no list index %q", ErrInvalidPointer, FormatPointer(tokens[:i+1]), t)
			}
			cur = v[j]
		default:
			return fmt.Errorf("%w: %s is not an object or list", ErrInvalidPointer, FormatPointer(tokens[:i+1]))
		}
	}
	last := tokens[len(tokens)-1]
	switch v := cur.(type) {
	case map[string]any:
		v[last] = value
		return nil
	case []any:
		j, err := strconv.Atoi(last)
		if err != nil || j < 0 || j >= len(v) {
			return fmt.Errorf("%w: %s: no list index %q", ErrInvalidPointer, FormatPointer(tokens), last)
		}
		v[j] = value
		return nil
	}
	return fmt.Errorf("%w: parent of %s is not an object or list", ErrInvalidPointer, FormatPointer(tokens))
}
