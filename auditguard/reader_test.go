package auditguard

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadLines(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 10<<20) // a 10 MB LIST response
	tests := map[string]struct {
		in       string
		max      int
		want     []string
		tooLong  int
		consumed int64
	}{
		"lines":             {in: "a\nbb\n", max: 1 << 16, want: []string{"a", "bb"}, consumed: 5},
		"partial last line": {in: "a\nbb", max: 1 << 16, want: []string{"a"}, consumed: 2},
		"empty lines":       {in: "\n\na\n", max: 1 << 16, want: []string{"", "", "a"}, consumed: 4},
		"10 MB line":        {in: "a\n" + big + "\nb\n", max: DefaultMaxLine, want: []string{"a", big, "b"}, consumed: int64(5 + len(big))},
		"too long skipped":  {in: "a\n" + big + "\nb\n", max: 1 << 20, want: []string{"a", "b"}, tooLong: 1, consumed: int64(5 + len(big))},
		"garbage bytes":     {in: "\x00\xff{\"type\n", max: 1 << 16, want: []string{"\x00\xff{\"type"}, consumed: 9},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []string
			tooLong := 0
			// OneByteReader-like short reads exercise the buffer-full path too.
			n, err := ReadLines(iotest.HalfReader(strings.NewReader(tc.in)), tc.max,
				func(l []byte) { got = append(got, string(l)) }, func() { tooLong++ })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: got %.40q (len %d), want %.40q (len %d)", i, got[i], len(got[i]), tc.want[i], len(tc.want[i]))
				}
			}
			if tooLong != tc.tooLong {
				t.Errorf("tooLong = %d, want %d", tooLong, tc.tooLong)
			}
			if n != tc.consumed {
				t.Errorf("consumed = %d, want %d", n, tc.consumed)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		kind Kind
		name string
	}{
		"sys/policies/acl/ESO-Order-Service":    {KindPolicy, "eso-order-service"},
		"sys/policy/eso-order-service":          {KindPolicy, "eso-order-service"},
		"sys/policies/acl":                      {KindIrrelevant, ""},
		"auth/kubernetes/role/external-secrets": {KindRole, "kubernetes/external-secrets"},
		"auth/k8s/prod/role/eso":                {KindRole, "k8s/prod/eso"},
		"auth/K8s-Prod/role/ESO-Role":           {KindRole, "K8s-Prod/eso-role"},
		"auth/kubernetes/role/":                 {KindIrrelevant, ""},
		"auth/kubernetes/login":                 {KindIrrelevant, ""},
		"sys/auth/kubernetes":                   {KindAuthMount, "kubernetes"},
		"sys/audit/guard":                       {KindAudit, "guard"},
		"registry-creds/data/order-service":     {KindIrrelevant, ""},
		"auth/token/lookup-self":                {KindIrrelevant, ""},
		// Vault's policy store trims whitespace and lower-cases every name it sets, reads or deletes:
		// DELETE sys/policies/acl/eso-order-service%20 deletes eso-order-service.
		"sys/policies/acl/eso-order-service ":    {KindPolicy, "eso-order-service"},
		"sys/policies/acl/\tESO-Order-Service\n": {KindPolicy, "eso-order-service"},
		"sys/policy/ eso-order-service":          {KindPolicy, "eso-order-service"},
		"sys/policies/acl/ ":                     {KindIrrelevant, ""},
		// Policy names may contain '/' (the route is policies/acl/(?P<name>.+)).
		"sys/policies/acl/team/eso":                {KindPolicy, "team/eso"},
		"sys/policy/Team/ESO":                      {KindPolicy, "team/eso"},
		"sys/policies/acl/eso-order-service/extra": {KindPolicy, "eso-order-service/extra"},
		// Vault appends the '/' to an audit device path before looking it up: both disable "guard".
		"sys/audit/guard/":   {KindAudit, "guard"},
		"sys/audit/team/dev": {KindAudit, "team/dev"},
		"sys/audit/":         {KindIrrelevant, ""},
		// Auth mounts may be nested.
		"sys/auth/clusters/prod":  {KindAuthMount, "clusters/prod"},
		"sys/auth/clusters/prod/": {KindAuthMount, "clusters/prod"},
	}
	for path, tc := range tests {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			k, n := Classify(path)
			if k != tc.kind || n != tc.name {
				t.Errorf("Classify(%q) = %v %q, want %v %q", path, k, n, tc.kind, tc.name)
			}
			// The pre-filter passes everything Classify acts on.
			if k != KindIrrelevant && !Relevant([]byte(authLine("update", path))) {
				t.Errorf("Relevant dropped a write to %q", path)
			}
		})
	}
}

const deleteEntry = `{"auth":{"accessor":"hmac-sha256:aa","client_token":"hmac-sha256:bb","display_name":"userpass-cleanup-bot","entity_id":"7d2e","policies":["admin","default"],"token_policies":["admin","default"],"metadata":{"username":"cleanup-bot"}},"request":{"id":"4c1f","operation":"delete","mount_point":"sys/","mount_type":"system","client_token":"hmac-sha256:bb","namespace":{"id":"root"},"path":"sys/policies/acl/eso-order-service","remote_address":"10.0.4.17","remote_port":51234},"response":{"mount_point":"sys/","mount_type":"system"},"time":"2026-11-27T10:02:00.123456Z","type":"response"}`

// authLine is deleteEntry as a response to op on path.
func authLine(op, path string) string {
	return strings.Replace(strings.Replace(deleteEntry, `"operation":"delete"`, `"operation":"`+op+`"`, 1),
		"sys/policies/acl/eso-order-service", path, 1)
}

func TestRelevantAndDecode(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		line     string
		relevant bool
	}{
		"policy delete response": {line: deleteEntry, relevant: true},
		"policy delete request":  {line: strings.Replace(deleteEntry, `"type":"response"`, `"type":"request"`, 1), relevant: false},
		"kv read":                {line: strings.Replace(deleteEntry, "sys/policies/acl/eso-order-service", "registry-creds/data/order-service", 1), relevant: false},
		"enterprise namespace path first": {
			line:     strings.Replace(deleteEntry, `"namespace":{"id":"root"}`, `"namespace":{"id":"abc","path":"team-a/"}`, 1),
			relevant: true,
		},
		"garbage":     {line: "\x00\x01 not json", relevant: false},
		"policy read": {line: strings.Replace(deleteEntry, `"operation":"delete"`, `"operation":"read"`, 1), relevant: false},
		// The busiest traffic under auth/ is not about roles.
		"kubernetes login":                         {line: authLine("update", "auth/kubernetes/login"), relevant: false},
		"token renew-self":                         {line: authLine("update", "auth/token/renew-self"), relevant: false},
		"token create":                             {line: authLine("update", "auth/token/create"), relevant: false},
		"token role write":                         {line: authLine("update", "auth/token/roles/eso"), relevant: false},
		"approle secret-id":                        {line: authLine("update", "auth/approle/role/eso/secret-id"), relevant: false},
		"role path without name":                   {line: authLine("update", "auth/kubernetes/role/"), relevant: false},
		"role write":                               {line: authLine("update", "auth/kubernetes/role/eso"), relevant: true},
		"role delete":                              {line: authLine("delete", "auth/kubernetes/role/eso"), relevant: true},
		"role write on another mount":              {line: authLine("create", "auth/k8s-payments/role/payments"), relevant: true},
		"role write on a nested mount, mixed case": {line: authLine("update", "auth/k8s/prod/role/ESO-Role"), relevant: true},
		"role write in a namespace": {
			line:     strings.Replace(authLine("update", "auth/kubernetes/role/eso"), `"namespace":{"id":"root"}`, `"namespace":{"id":"abc","path":"auth/"}`, 1),
			relevant: true,
		},
		// The device being disabled receives only the request entry of its own disable.
		"audit disable request": {line: strings.Replace(strings.Replace(deleteEntry, `"type":"response"`, `"type":"request"`, 1),
			"sys/policies/acl/eso-order-service", "sys/audit/guard", 1), relevant: true},
		"audit enable request": {line: strings.Replace(strings.Replace(strings.Replace(deleteEntry, `"type":"response"`, `"type":"request"`, 1),
			"sys/policies/acl/eso-order-service", "sys/audit/guard", 1), `"operation":"delete"`, `"operation":"update"`, 1), relevant: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := Relevant([]byte(tc.line)); got != tc.relevant {
				t.Errorf("Relevant = %v, want %v", got, tc.relevant)
			}
		})
	}
	e, err := DecodeEntry([]byte(deleteEntry))
	if err != nil {
		t.Fatal(err)
	}
	if e.Request.Operation != "delete" || e.Request.Path != "sys/policies/acl/eso-order-service" ||
		e.Auth.DisplayName != "userpass-cleanup-bot" || e.Auth.EntityID != "7d2e" || e.Request.RemoteAddress != "10.0.4.17" ||
		e.Type != "response" || e.Time.IsZero() {
		t.Errorf("decoded %+v", e)
	}
	// An audit device's prefix option puts its text before every entry.
	for _, prefix := range []string{"vault-audit: ", "2026-12-01T10:00:00Z vault[1]: ", "@cee:"} {
		if p, err := DecodeEntry([]byte(prefix + deleteEntry)); err != nil || p.Request.Path != e.Request.Path || p.Auth.DisplayName != e.Auth.DisplayName {
			t.Errorf("DecodeEntry(%q + entry) = %+v, %v", prefix, p, err)
		}
		if !Relevant([]byte(prefix + deleteEntry)) {
			t.Errorf("Relevant dropped an entry with prefix %q", prefix)
		}
	}
	for _, bad := range []string{``, `{`, `{"type":"x"}`, `[]`, `{"type":"response","time":"yesterday"}`, `prefix only`} {
		if _, err := DecodeEntry([]byte(bad)); err == nil {
			t.Errorf("DecodeEntry(%q) succeeded", bad)
		}
	}
}

// FuzzEntry: the pre-filter and decoder never panic, and anything the decoder accepts as a relevant
// response is also passed by the pre-filter when its path is plain (no escapes).
func FuzzEntry(f *testing.F) {
	f.Add([]byte(deleteEntry))
	f.Add([]byte(`{"type":"response","request":{"path":"auth/kubernetes/role/x"}}`))
	f.Add([]byte(`{"type":"response","request":{"namespace":{"path":"a/"},"path":"sys/audit/x"}}`))
	f.Add([]byte(`{"request":{"operation":"delete","path":"sys/audit/x"},"type":"request"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rel := Relevant(line)
		e, err := DecodeEntry(line)
		if err != nil {
			return
		}
		if e.Type == "request" {
			// The one request entry the guard acts on: an audit device's disable.
			k, _ := Classify(e.Request.Path)
			if k == KindAudit && e.Request.Operation == "delete" && !rel && !bytes.Contains(line, responseMarker) &&
				bytes.Contains(line, deleteOp) && bytes.Contains(line, []byte(`"path":"`+e.Request.Path+`"`)) {
				t.Fatalf("pre-filter dropped an audit disable request: %q", line)
			}
			return
		}
		k, _ := Classify(e.Request.Path)
		if k != KindIrrelevant && !rel && bytes.Contains(line, []byte(`"type":"response"`)) &&
			!bytes.Contains(line, readOp) && !bytes.Contains(line, listOp) &&
			bytes.Contains(line, []byte(`"request":{"path":"`+e.Request.Path+`"`)) {
			t.Fatalf("pre-filter dropped a relevant entry: %q", line)
		}
	})
}

// FuzzReadLines: every delivered line is newline-free and the byte count never exceeds the input.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nb\n"), 70000)
	f.Add([]byte(strings.Repeat("y", 200000)+"\nz\n"), 65536)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<20 {
			return
		}
		total := 0
		n, err := ReadLines(bytes.NewReader(in), max, func(l []byte) {
			if bytes.IndexByte(l, '\n') >= 0 || len(l) > max {
				t.Fatalf("bad line %q", l)
			}
			total += len(l) + 1
		}, nil)
		if err != nil || n > int64(len(in)) || int64(total) > n {
			t.Fatalf("n=%d total=%d len=%d err=%v", n, total, len(in), err)
		}
	})
}

// FuzzDecodeEntryMatchesStdlib: on valid JSON the fast decoder agrees with encoding/json.
func FuzzDecodeEntryMatchesStdlib(f *testing.F) {
	f.Add([]byte(deleteEntry))
	f.Add([]byte(`{"type":"response","request":{"path":"a\"b","namespace":{"id":"root","path":"x/"}},"auth":{"policies":null}}`))
	f.Add([]byte(`{"TYPE":"response","Request":{"PATH":"sys/audit/x"},"type":"request"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if !json.Valid(line) {
			return
		}
		var fast, slow Entry
		errFast := decodeFast(line, &fast)
		errSlow := json.Unmarshal(line, &slow)
		if errSlow != nil || errFast != nil {
			return // DecodeEntry falls back to encoding/json when the fast path gives up
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v", fast, slow)
		}
	})
}

// TestRelevantDoesNotAllocate: the pre-filter runs on every line Vault writes.
func TestRelevantDoesNotAllocate(t *testing.T) {
	lines := [][]byte{[]byte(deleteEntry), []byte(authLine("update", "auth/kubernetes/login")),
		[]byte(authLine("update", "auth/k8s/prod/role/eso")), []byte(strings.Replace(deleteEntry, `"type":"response"`, `"type":"request"`, 1))}
	if n := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			Relevant(l)
		}
	}); n != 0 {
		t.Errorf("Relevant allocates %v times per 4 lines", n)
	}
}
