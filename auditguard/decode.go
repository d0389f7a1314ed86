package auditguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The fast entry decoder. encoding/json walks every byte of an entry through reflection, including
// the response object and the request's headers and data, which the guard never reads; on the 2-core
// machines this runs on that capped relevant-entry ingest near 17k lines/s. This decoder walks the
// object with a byte scanner, skips the members it does not need, and unquotes the few strings it
// does. It accepts exactly what encoding/json would produce for these fields on valid JSON
// (FuzzDecodeEntryMatchesStdlib checks), and falls back to encoding/json for anything unusual
// (escaped strings, non-string values).

var errSyntax = errors.New("malformed JSON")

// decodeFast fills e from line. It returns errSyntax when the line is not a JSON object it can walk.
func decodeFast(line []byte, e *Entry) error {
	return members(line, func(key, val []byte) error {
		switch {
		case keyIs(key, "auth"):
			return members(val, func(k, v []byte) error {
				switch {
				case keyIs(k, "accessor"):
					return str(v, &e.Auth.Accessor)
				case keyIs(k, "display_name"):
					return str(v, &e.Auth.DisplayName)
				case keyIs(k, "entity_id"):
					return str(v, &e.Auth.EntityID)
				case keyIs(k, "policies"):
					return std(v, &e.Auth.Policies)
				case keyIs(k, "token_policies"):
					return std(v, &e.Auth.TokenPolicies)
				case keyIs(k, "metadata"):
					return std(v, &e.Auth.Metadata)
				}
				return nil
			})
		case keyIs(key, "request"):
			return members(val, func(k, v []byte) error {
				switch {
				case keyIs(k, "id"):
					return str(v, &e.Request.ID)
				case keyIs(k, "operation"):
					return str(v, &e.Request.Operation)
				case keyIs(k, "path"):
					return str(v, &e.Request.Path)
				case keyIs(k, "remote_address"):
					return str(v, &e.Request.RemoteAddress)
				case keyIs(k, "mount_type"):
					return str(v, &e.Request.MountType)
				case keyIs(k, "mount_point"):
					return str(v, &e.Request.MountPoint)
				case keyIs(k, "namespace"):
					return std(v, &e.Request.Namespace)
				}
				return nil
			})
		case keyIs(key, "error"):
			return str(val, &e.Error)
		case keyIs(key, "type"):
			return str(val, &e.Type)
		case keyIs(key, "time"):
			return std(val, &e.Time)
		}
		return nil
	})
}

// keyIs matches a raw (quoted) key the way encoding/json matches field names: case-insensitively.
func keyIs(raw []byte, name string) bool {
	return len(raw) == len(name)+2 && bytes.EqualFold(raw[1:len(raw)-1], []byte(name))
}

// str decodes a JSON string (or null) into *dst; plain strings without escapes avoid encoding/json.
func str(v []byte, dst *string) error {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '\\') < 0 && bytes.IndexByte(v[1:len(v)-1], '"') < 0 && validUTF8NoCtl(v[1:len(v)-1]) {
		*dst = string(v[1 : len(v)-1])
		return nil
	}
	return std(v, dst)
}

func validUTF8NoCtl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false // control bytes are invalid JSON; non-ASCII goes through encoding/json's UTF-8 handling
		}
	}
	return true
}

func std(v []byte, dst any) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%w: %v", errSyntax, err)
	}
	return nil
}

// members calls fn for each member of the JSON object in b, with the raw quoted key and the raw value.
// A null value for the whole object is no members. Keys with escapes are passed raw (they never match).
func members(b []byte, fn func(key, val []byte) error) error {
	i := skipWS(b, 0)
	if bytes.HasPrefix(b[i:], []byte("null")) && skipWS(b, i+4) == len(b) {
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		return errSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return errSyntax
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errSyntax
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i:ke]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return errSyntax
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
			return errSyntax
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return errSyntax
			}
			return nil
		default:
			return errSyntax
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
	return 0, errSyntax
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
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
		return 0, errSyntax
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, errSyntax
		}
		return j, nil
	}
}
