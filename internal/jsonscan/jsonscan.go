// Package jsonscan walks JSON objects and arrays without decoding them, so a hot path can pull out
// a few fields from a large document (an audit entry, a Deployment in an AdmissionReview) as
// sub-slices of the input — no reflection, no copies of the parts it skips. On valid JSON the
// values it yields are what encoding/json would decode for the same fields (fuzzed in both users);
// it is not a validator, and callers fall back to encoding/json for anything unusual.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrSyntax is returned for input the scanner cannot walk.
var ErrSyntax = errors.New("malformed JSON")

// KeyIs matches a raw (quoted) key the way encoding/json matches field names: case-insensitively.
func KeyIs(raw []byte, name string) bool {
	return len(raw) == len(name)+2 && bytes.EqualFold(raw[1:len(raw)-1], []byte(name))
}

// String decodes a JSON string (or null) into *dst; plain strings without escapes avoid encoding/json.
func String(v []byte, dst *string) error {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '\\') < 0 && bytes.IndexByte(v[1:len(v)-1], '"') < 0 && validUTF8NoCtl(v[1:len(v)-1]) {
		*dst = string(v[1 : len(v)-1])
		return nil
	}
	return Std(v, dst)
}

func validUTF8NoCtl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false // control bytes are invalid JSON; non-ASCII goes through encoding/json's UTF-8 handling
		}
	}
	return true
}

// Std decodes v with encoding/json, wrapping its error in ErrSyntax.
func Std(v []byte, dst any) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return nil
}

// Members calls fn for each member of the JSON object in b, with the raw quoted key and the raw value.
// A null value for the whole object is no members. Keys with escapes are passed raw (they never match).
func Members(b []byte, fn func(key, val []byte) error) error {
	i := skipWS(b, 0)
	if bytes.HasPrefix(b[i:], []byte("null")) && skipWS(b, i+4) == len(b) {
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		return ErrSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return ErrSyntax
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return ErrSyntax
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i:ke]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return ErrSyntax
		}
		vs := skipWS(b, i+1)
		ve, err := skipValue(b, vs)
		if err != nil {
			return err
		}
		if err := fn(key, b[vs:ve]); err != nil {
			return err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return ErrSyntax
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, ErrSyntax
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, ErrSyntax
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, ErrSyntax
		}
		return j, nil
	}
}

// Elements calls fn for each element of the JSON array in b (null is no elements).
func Elements(b []byte, fn func(val []byte) error) error {
	i := skipWS(b, 0)
	if bytes.HasPrefix(b[i:], []byte("null")) && skipWS(b, i+4) == len(b) {
		return nil
	}
	if i >= len(b) || b[i] != '[' {
		return ErrSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		if skipWS(b, i+1) != len(b) {
			return ErrSyntax
		}
		return nil
	}
	for {
		ve, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if err := fn(b[i:ve]); err != nil {
			return err
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			if skipWS(b, i+1) != len(b) {
				return ErrSyntax
			}
			return nil
		default:
			return ErrSyntax
		}
	}
}

// IsNull reports whether v is the JSON null literal.
func IsNull(v []byte) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }
