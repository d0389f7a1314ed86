package auditguard

import "bytes"

// The pre-filter: what a sink goroutine decides about a line from its bytes alone, before any
// decode, so that Vault (which waits on the socket write of every audited request) never waits
// for the guard.

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
	authPrefix     = []byte("auth/")
	roleSeg        = []byte("/role/")
	loginSuffix    = []byte("/login")
	kubernetesAuth = []byte(`"mount_type":"kubernetes"`)
)

// isKubernetesLogin reports whether the "path" value at the start of v is auth/<mount>/login, on
// a line naming the kubernetes mount type: a login's response, which says the role is active
// (active.go). The mount type is looked for only on login paths, which are a small share of the
// traffic under auth/; other auth methods' logins (auth/approle/login) are dropped by it, and
// userpass's (auth/userpass/login/<user>) by the path.
func isKubernetesLogin(v []byte, line []byte) bool {
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return false
	}
	p := v[len(authPrefix):end]
	return len(p) > len(loginSuffix) && bytes.HasSuffix(p, loginSuffix) && bytes.Contains(line, kubernetesAuth)
}

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
// the prefixes the guard acts on (under auth/, only auth/<mount>/role/<name>, and a Kubernetes auth
// mount's auth/<mount>/login, whose role the guard records as active), or the request entry
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
			if isRolePath(rest) || isKubernetesLogin(rest, line) {
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
