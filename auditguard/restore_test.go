package auditguard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/credchain/credchain/internal/events"
)

// Wrong restores (issue 11 items 8-10, 12), on an in-memory Vault: each step is an audit line the
// guard ingests after the in-memory Vault has been changed as the real one would have been.

// line is an audit response entry for op on path, with its own request ID and Vault's time now (a
// "prompt" entry: the old code skipped its read before restoring).
func line(id int, op, path string) []byte {
	l := strings.Replace(authLine(op, path), `"id":"4c1f"`, fmt.Sprintf(`"id":"step-%d"`, id), 1)
	return []byte(strings.Replace(l, "2026-11-27T10:02:00.123456Z", time.Now().UTC().Format(time.RFC3339Nano), 1))
}

// step is one thing that happens in Vault, then reaches the guard as an audit entry.
type step struct {
	do   func(v *memVault) // Vault's state after the request
	op   string
	path string
}

func deletePolicy(name string) step {
	return step{do: func(v *memVault) { delete(v.policies, name) }, op: "delete", path: "sys/policies/acl/" + name}
}

func writePolicy(name, body string) step {
	return step{do: func(v *memVault) { v.policies[name] = body }, op: "update", path: "sys/policies/acl/" + name}
}

func writeRole(role string, policies ...string) step {
	return step{do: func(v *memVault) { v.roles[role] = policies }, op: "update", path: "auth/kubernetes/role/" + role}
}

// vaultChange is a change the guard is not told about (its audit entry comes later, or never).
func vaultChange(do func(v *memVault)) step { return step{do: do} }

const hardened = `path "registry-creds/data/order-service" { capabilities = ["read"] } # hardened`

func TestRestoreDecisions(t *testing.T) {
	t.Parallel()
	type want struct {
		types []string // event types, in order
		body  string   // eso-order-service's body at the end ("" absent)
		check func(t *testing.T, evs []events.Event)
	}
	for name, tc := range map[string]struct {
		legacy bool // legacy-admin exists and no role references it
		steps  []step
		opts   []Option
		want   want
	}{
		"a referenced policy deleted is restored": {
			steps: []step{deletePolicy("eso-order-service")},
			want:  want{types: []string{events.PolicyRestored}, body: orderServicePolicyForTest},
		},
		// Item 12: a delete line is a hint. The policy is there (a forged line, or re-created
		// since): nothing is written over it, however promptly the line came.
		"a prompt delete of a policy that exists writes nothing": {
			steps: []step{vaultChange(func(v *memVault) { v.policies["eso-order-service"] = hardened }),
				{op: "delete", path: "sys/policies/acl/eso-order-service"}},
			want: want{types: []string{events.PolicyDeleted}, body: hardened},
		},
		// Item 8: an admin hardens the policy and it is deleted before the guard reads the new
		// body back. The snapshot predates the last write Vault logged: never written back.
		"update, then delete before the read-back": {
			steps: []step{
				vaultChange(func(v *memVault) { v.policies["eso-order-service"] = hardened }),
				vaultChange(func(v *memVault) { delete(v.policies, "eso-order-service") }),
				{op: "update", path: "sys/policies/acl/eso-order-service"}, // the hardening's entry
				{op: "delete", path: "sys/policies/acl/eso-order-service"},
			},
			want: want{types: []string{events.PolicyRestoreFailed}, body: "", check: func(t *testing.T, evs []events.Event) {
				if e := evs[0]; e.Reason != "superseded" || e.Action != "none" || !strings.Contains(e.Message, "older than") {
					t.Errorf("event = %+v", e)
				}
			}},
		},
		"update read back, then delete: the new body is restored": {
			steps: []step{writePolicy("eso-order-service", hardened), deletePolicy("eso-order-service")},
			want:  want{types: []string{events.PolicyRestored}, body: hardened},
		},
		// Item 9: a delete accepted while unreferenced is final; a role that references the policy
		// later is told it is missing, not given the deleted body back.
		"deleted unreferenced, then a role references it": {
			legacy: true,
			steps:  []step{deletePolicy("legacy-admin"), writeRole("eso-new", "legacy-admin")},
			want: want{types: []string{events.PolicyDeleted, events.DanglingReference}, check: func(t *testing.T, evs []events.Event) {
				if e := evs[1]; e.Policy != "legacy-admin" || !strings.Contains(e.Message, "userpass-cleanup-bot") {
					t.Errorf("event = %+v", e)
				}
			}},
		},
		"deleted unreferenced, written again, referenced, deleted: restored": {
			legacy: true,
			steps: []step{deletePolicy("legacy-admin"), writePolicy("legacy-admin", "path \"x\" {}"),
				writeRole("eso-new", "legacy-admin"), deletePolicy("legacy-admin")},
			want: want{types: []string{events.PolicyDeleted, events.PolicyRestored}},
		},
		// Item 10: a tool that keeps deleting the policy gets restores up to the limit, then an alert, and
		// the guard stops fighting it (reconcile too).
		"deleted again and again": {
			opts: []Option{WithFlapDetection(3, time.Hour)},
			steps: []step{deletePolicy("eso-order-service"), deletePolicy("eso-order-service"),
				deletePolicy("eso-order-service"), deletePolicy("eso-order-service")},
			want: want{types: []string{events.PolicyRestored, events.PolicyRestored, events.PolicyRestoreFailed}, body: "",
				check: func(t *testing.T, evs []events.Event) {
					if e := evs[2]; e.Reason != "flapping" || !strings.Contains(e.Message, "3 times within 1h0m0s") {
						t.Errorf("event = %+v", e)
					}
				}},
		},
		"deletes spread wider than the window are restored": {
			opts: []Option{WithFlapDetection(2, time.Nanosecond)},
			steps: []step{deletePolicy("eso-order-service"), deletePolicy("eso-order-service"),
				deletePolicy("eso-order-service")},
			want: want{types: []string{events.PolicyRestored, events.PolicyRestored, events.PolicyRestored}, body: orderServicePolicyForTest},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			v := &memVault{policies: map[string]string{"eso-order-service": orderServicePolicyForTest},
				roles: map[string][]string{"external-secrets-operator": {"eso-order-service"}}}
			if tc.legacy {
				v.policies["legacy-admin"] = `path "sys/*" { capabilities = ["sudo"] }`
			}
			rec := &events.Recorder{}
			g := NewGuard(v, store, rec, nil, testr.New(t), tc.opts...)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = g.Run(ctx) }()
			for !g.Ready() {
				time.Sleep(5 * time.Millisecond)
			}
			flushes := 0
			flush := func() {
				// Only once the step's entry has been taken off the queue and handled: an entry
				// queued behind it would make the guard treat it as "not prompt".
				for len(g.queue) > 0 {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(10 * time.Millisecond)
				flushes++
				g.Ingest(line(1000+flushes, "delete", "sys/policies/acl/flush"))
				waitFlush(t, rec, flushes)
			}
			for i, s := range tc.steps {
				if s.do != nil {
					v.mu.Lock()
					s.do(v)
					v.mu.Unlock()
				}
				if s.op != "" {
					g.Ingest(line(i, s.op, s.path))
					flush()
				}
			}
			g.Reconnected() // a reconcile repairs nothing the steps decided against
			flush()
			var got []events.Event
			for _, e := range rec.All() {
				if e.Policy != "flush" {
					got = append(got, e)
				}
			}
			types := make([]string, len(got))
			for i, e := range got {
				types[i] = e.Type
			}
			if strings.Join(types, ",") != strings.Join(tc.want.types, ",") {
				t.Fatalf("events = %v, want %v\n%+v", types, tc.want.types, got)
			}
			if tc.want.check != nil {
				tc.want.check(t, got)
			}
			if body, _, _ := v.ReadPolicy(ctx, "", "eso-order-service"); !tc.legacy && body != tc.want.body {
				t.Errorf("eso-order-service = %q, want %q", body, tc.want.body)
			}
		})
	}
}

// waitFlush waits until the guard has reported n deletes of policy "flush": everything ingested
// before the n-th has been handled.
func waitFlush(t *testing.T, rec *events.Recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got := 0
		for _, e := range rec.All() {
			if e.Policy == "flush" {
				got++
			}
		}
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("flush %d not reported: %+v", n, rec.All())
}
