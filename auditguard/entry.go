package auditguard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Entry is the part of one Vault audit log line the guard reads. Vault's own types are unexported
// and BUSL-licensed, so these are ours. Values under request/response data are HMAC'd by default
// and never relied on; paths, operations and the auth block's names are plain.
type Entry struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // "request" or "response"
	Auth    Auth      `json:"auth"`
	Request Request   `json:"request"`
	Error   string    `json:"error"`
}

// Auth says who made the request. ClientToken and Accessor are HMAC'd (hmac_accessor=true by
// default) and never logged or forwarded.
type Auth struct {
	Accessor      string            `json:"accessor"`
	DisplayName   string            `json:"display_name"`
	EntityID      string            `json:"entity_id"`
	Policies      []string          `json:"policies"`
	TokenPolicies []string          `json:"token_policies"`
	Metadata      map[string]string `json:"metadata"`
}

// Request is the audited request.
type Request struct {
	ID            string    `json:"id"`
	Operation     string    `json:"operation"`
	Path          string    `json:"path"`
	Namespace     Namespace `json:"namespace"`
	RemoteAddress string    `json:"remote_address"`
	MountType     string    `json:"mount_type"`
	MountPoint    string    `json:"mount_point"`
}

// Namespace is the Vault Enterprise namespace of a request; OSS Vault always logs the root
// namespace ({"id":"root"}, empty path).
type Namespace struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// DecodeEntry decodes one audit line. A prefix before the JSON object (the audit device's prefix
// option, which Vault writes before every entry) is skipped: the entry starts at the first `{"`.
// A prefix containing `{"` itself is not supported; such lines fail to decode (and are counted).
func DecodeEntry(line []byte) (*Entry, error) {
	line = skipPrefix(line)
	var e Entry
	if err := decodeFast(line, &e); err != nil {
		// Not walkable by the fast decoder: let encoding/json decide, and report its error.
		e = Entry{}
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("decoding audit entry: %w", err)
		}
	}
	if e.Type != "request" && e.Type != "response" {
		return nil, fmt.Errorf("decoding audit entry: unknown type %q", e.Type)
	}
	return &e, nil
}

var objectStart = []byte(`{"`)

// skipPrefix returns line from its JSON object's start.
func skipPrefix(line []byte) []byte {
	if len(line) > 0 && line[0] == '{' {
		return line
	}
	if i := bytes.Index(line, objectStart); i > 0 {
		return line[i:]
	}
	return line
}

// looksLikeEntry is the cheapest test that a line can be a JSON audit entry at all: Vault's JSON
// format ends every entry with the object's '}'. A jsonx device's XML, or any other text, fails it.
func looksLikeEntry(line []byte) bool {
	for i := len(line) - 1; i >= 0; i-- {
		switch line[i] {
		case ' ', '\r', '\n':
			continue
		case '}':
			return true
		}
		return false
	}
	return false
}

// NSPath is the namespace path without trailing slash, "" for root.
func (n Namespace) NSPath() string { return strings.TrimSuffix(n.Path, "/") }
