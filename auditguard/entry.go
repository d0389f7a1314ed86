// Package auditguard is a Vault audit-device sink (socket, file, stdin) that keeps a reverse index
// policy → Kubernetes auth roles and restores policies that roles still reference when someone
// deletes them — the root cause of the order-service incident — then says who did it.
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

// What an audited path is about, for the processing loop.
type Kind int

const (
	KindIrrelevant Kind = iota
	KindPolicy          // sys/policies/acl/<name> or the legacy sys/policy/<name>
	KindRole            // auth/<mount>/role/<name>
	KindAuthMount       // sys/auth/<path>
	KindAudit           // sys/audit/<path>
	KindRemount         // sys/remount (a mount moved; its body, from and to, is HMACed)
)

// PolicyName is a policy name as Vault's policy store keys it: surrounding whitespace trimmed,
// then lower-cased. Vault applies this to the name of every set, read and delete (its
// PolicyStore.sanitizeName), so DELETE sys/policies/acl/ESO-Order-Service%20 deletes
// eso-order-service; comparing the raw name would report that delete as one of an unreferenced
// policy. '/' is kept: it is part of the name (team/eso), and a trailing one names another policy.
// Every name from an audit path, a role or the API goes through here (one home for the rule).
func PolicyName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Classify returns what path is about and the object's name (for a role: "<mount>/<role>").
// Policy names are normalised as Vault's policy store does (PolicyName), and may contain '/'
// (Vault's route is policies/acl/(?P<name>.+)). The Kubernetes auth plugin lower-cases role names
// (it stores and deletes role/<lower-cased name>, and LIST returns them so), so they are
// lower-cased here too: a write to auth/kubernetes/role/ESO-Role must update the index entry the
// resync made for "eso-role", not add a second one beside it. Mount and audit device paths are
// case-sensitive in Vault and kept as they are, without the trailing '/' Vault adds before looking
// one up (DELETE sys/audit/guard/ disables device "guard"); both may be nested (clusters/prod).
func Classify(path string) (Kind, string) {
	switch {
	case strings.HasPrefix(path, "sys/policies/acl/"):
		return named(KindPolicy, PolicyName(strings.TrimPrefix(path, "sys/policies/acl/")))
	case strings.HasPrefix(path, "sys/policy/"):
		return named(KindPolicy, PolicyName(strings.TrimPrefix(path, "sys/policy/")))
	case strings.HasPrefix(path, "sys/auth/"):
		return named(KindAuthMount, strings.TrimSuffix(strings.TrimPrefix(path, "sys/auth/"), "/"))
	case path == "sys/remount" || path == "sys/remount/":
		return KindRemount, ""
	case strings.HasPrefix(path, "sys/audit/"):
		return named(KindAudit, strings.TrimSuffix(strings.TrimPrefix(path, "sys/audit/"), "/"))
	case strings.HasPrefix(path, "auth/"):
		rest := strings.TrimPrefix(path, "auth/")
		i := strings.Index(rest, "/role/")
		if i <= 0 {
			return KindIrrelevant, ""
		}
		mount, role := rest[:i], rest[i+len("/role/"):]
		if role == "" || strings.Contains(role, "/") {
			return KindIrrelevant, ""
		}
		return KindRole, mount + "/" + strings.ToLower(role)
	}
	return KindIrrelevant, ""
}

func named(k Kind, name string) (Kind, string) {
	if name == "" {
		return KindIrrelevant, ""
	}
	return k, name
}

// isResponse: Vault marshals entries with sorted keys, so "type" is the last key and the common
// case is decided from the line's last bytes without scanning it.
func isResponse(line []byte) bool {
	l := bytes.TrimRight(line, " \r\n")
	switch {
	case bytes.HasSuffix(l, responseSuffix):
		return true
	case bytes.HasSuffix(l, requestSuffix):
		return false
	}
	return bytes.Contains(line, responseMarker)
}

var (
	responseSuffix = []byte(`"type":"response"}`)
	requestSuffix  = []byte(`"type":"request"}`)
	responseMarker = []byte(`"type":"response"`)
	requestMarker  = []byte(`"request":{`)
	pathMarker     = []byte(`"path":"`)
	readOp         = []byte(`"operation":"read"`)
	listOp         = []byte(`"operation":"list"`)
	deleteOp       = []byte(`"operation":"delete"`)
	auditPath      = []byte(`"path":"sys/audit/`)
)

// relevantPrefixes are the request paths the guard acts on; everything else is dropped before a
// full decode. Under auth/ only role paths are (isRolePath).
var relevantPrefixes = [][]byte{
	[]byte("sys/policies/acl/"), []byte("sys/policy/"), []byte("sys/auth/"), []byte("sys/audit/"), []byte("sys/remount"),
}

var (
	authPrefix = []byte("auth/")
	roleSeg    = []byte("/role/")
)

// isRolePath reports whether the "path" value at the start of v (its closing quote not included
// yet) is auth/<mount>/role/<name> as Classify reads it. Most audited traffic is under auth/ —
// every ESO login (auth/kubernetes/login), token renewal (auth/token/renew-self) and token
// creation — and none of it but role writes matters. A value with an escape is passed: the decoder
// decides.
func isRolePath(v []byte) bool {
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return false // not a complete JSON string: not an entry the decoder accepts either
	}
	p := v[len(authPrefix):end]
	if bytes.IndexByte(p, '\\') >= 0 {
		return true
	}
	i := bytes.Index(p, roleSeg)
	if i <= 0 {
		return false
	}
	role := p[i+len(roleSeg):]
	return len(role) > 0 && bytes.IndexByte(role, '/') < 0
}

// Relevant is the read loop's cheap pre-filter: a response entry with a "path" value under one of
// the prefixes the guard acts on (under auth/, only auth/<mount>/role/<name>), or the request entry
// of an audit device's disable (the device being disabled never receives the response; see
// auditdevice.go). It scans for byte markers instead of decoding, so an irrelevant line (the vast
// majority: KV reads, logins, token renewals) costs a fraction of a microsecond. It may pass a line
// that turns out irrelevant (the decoder then decides); it never drops a relevant one, since every
// "path" value after the request object's start is tried — an Enterprise namespace's own "path"
// key comes before the request path.
func Relevant(line []byte) bool {
	if !isResponse(line) {
		// Half of all lines are requests: one scan for the rare path decides almost all of them.
		return bytes.Contains(line, auditPath) && bytes.Contains(line, deleteOp)
	}
	i := bytes.Index(line, requestMarker)
	if i < 0 {
		return false
	}
	rest := line[i+len(requestMarker):]
	// Reads and lists never change what the guard protects; they are most of the policy-path
	// traffic (the guard's own resync reads every policy), so drop them here.
	if bytes.Contains(rest, readOp) || bytes.Contains(rest, listOp) {
		return false
	}
	for {
		j := bytes.Index(rest, pathMarker)
		if j < 0 {
			return false
		}
		rest = rest[j+len(pathMarker):]
		if bytes.HasPrefix(rest, authPrefix) {
			if isRolePath(rest) {
				return true
			}
			continue // perhaps a namespace's path: try the next "path" value
		}
		for _, pre := range relevantPrefixes {
			if bytes.HasPrefix(rest, pre) {
				return true
			}
		}
	}
}
