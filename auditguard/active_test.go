package auditguard

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"os"
	"testing"
	"time"
)

// corpusLoginResponse is a Kubernetes login's response entry, made from the corpus's own login
// response (a userpass login: the corpus, recorded without a kube-apiserver, has no Kubernetes
// login) by changing what a Kubernetes auth mount logs differently: the path (the role is in the
// body, not the path), the mount and the auth metadata, where the Kubernetes plugin puts the role.
func corpusLoginResponse(t *testing.T) (userpass, kubernetes []byte) {
	t.Helper()
	f, err := os.Open("testdata/audit-corpus.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		l := sc.Bytes()
		if bytes.Contains(l, []byte(`"path":"auth/userpass/login/`)) && isResponse(l) && bytes.Contains(l, []byte(`"metadata":{"username":"eso"}`)) {
			userpass = bytes.Clone(l)
			break
		}
	}
	if userpass == nil {
		t.Fatal("the corpus has no userpass login response")
	}
	k := bytes.ReplaceAll(userpass, []byte(`"path":"auth/userpass/login/eso"`), []byte(`"path":"auth/kubernetes/login"`))
	k = bytes.ReplaceAll(k, []byte(`"mount_type":"userpass"`), []byte(`"mount_type":"kubernetes"`))
	k = bytes.ReplaceAll(k, []byte(`"mount_point":"auth/userpass/"`), []byte(`"mount_point":"auth/kubernetes/"`))
	k = bytes.ReplaceAll(k, []byte(`"metadata":{"username":"eso"}`),
		[]byte(`"metadata":{"role":"External-Secrets-Operator","service_account_name":"external-secrets","service_account_namespace":"external-secrets","service_account_secret_name":"","service_account_uid":"3b1f0c4e-2d6a-4f55-9a0e-6f1f7d2b9c11"}`))
	return userpass, k
}

func TestPrefilterAdmitsKubernetesLogins(t *testing.T) {
	t.Parallel()
	userpass, kube := corpusLoginResponse(t)
	request := bytes.ReplaceAll(kube, []byte(`"type":"response"`), []byte(`"type":"request"`))
	approle := bytes.ReplaceAll(kube, []byte(`"mount_type":"kubernetes"`), []byte(`"mount_type":"approle"`))
	for name, c := range map[string]struct {
		line []byte
		want bool
	}{
		"a Kubernetes login's response":            {kube, true},
		"its request (no auth block yet)":          {request, false},
		"a userpass login's response, from corpus": {userpass, false},
		"an approle login's response":              {approle, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := Relevant(c.line); got != c.want {
				t.Errorf("Relevant = %v, want %v", got, c.want)
			}
		})
	}
}

func TestLoginLearnedFromEntry(t *testing.T) {
	t.Parallel()
	_, kube := corpusLoginResponse(t)
	e, err := DecodeEntry(kube)
	if err != nil {
		t.Fatal(err)
	}
	mount, role, ok := loginOf(e)
	if !ok || mount != "kubernetes" || role != "external-secrets-operator" {
		t.Errorf("loginOf = %q, %q, %v", mount, role, ok)
	}
	failed := *e
	failed.Error = "permission denied"
	if _, _, ok := loginOf(&failed); ok {
		t.Error("a failed login counted")
	}
}

func TestActiveRoleDecisions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	const window = 30 * 24 * time.Hour
	watched := now.Add(-window - time.Hour)
	for name, c := range map[string]struct {
		window time.Duration
		since  time.Time
		inUse  bool
		last   time.Time
		want   bool
	}{
		"used by an ESO store, never logged in": {window, watched, true, time.Time{}, true},
		"logged in within the window":           {window, watched, false, now.Add(-window + time.Hour), true},
		"last login before the window":          {window, watched, false, now.Add(-window - time.Minute), false},
		"never seen":                            {window, watched, false, time.Time{}, false},
		"window not yet watched":                {window, now.Add(-window + time.Minute), false, time.Time{}, true},
		"window 0: the rule is off":             {-1, watched, false, time.Time{}, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := roleActive(c.window, c.since, now, c.inUse, c.last); got != c.want {
				t.Errorf("roleActive = %v, want %v", got, c.want)
			}
		})
	}
}

func TestLoginsPersistCoalesced(t *testing.T) {
	t.Parallel()
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	a := newActivity(30*24*time.Hour, t0)
	k := roleKey{"", "kubernetes", "eso"}
	a.login(s, k, t0)
	a.login(s, k, t0.Add(10*time.Second)) // within the minute: memory only
	got, err := s.Logins()
	if err != nil {
		t.Fatal(err)
	}
	if !got[k].Equal(t0) {
		t.Errorf("persisted %v, want the first login %v (the second coalesced)", got[k], t0)
	}
	if !a.last[k].Equal(t0.Add(10 * time.Second)) {
		t.Errorf("in memory %v", a.last[k])
	}
	a.login(s, k, t0.Add(20*time.Second))
	a.flush(s, t0.Add(30*time.Second), false) // not due yet
	if got, _ = s.Logins(); !got[k].Equal(t0) {
		t.Errorf("flushed before the minute: %v", got[k])
	}
	a.flush(s, t0.Add(time.Minute), false)
	if got, _ = s.Logins(); !got[k].Equal(t0.Add(20 * time.Second)) {
		t.Errorf("after flush persisted %v", got[k])
	}
	a.login(s, k, t0.Add(70*time.Second))
	a.flush(s, t0.Add(71*time.Second), true) // the guard stops
	if got, _ = s.Logins(); !got[k].Equal(t0.Add(70 * time.Second)) {
		t.Errorf("at stop persisted %v", got[k])
	}
}
