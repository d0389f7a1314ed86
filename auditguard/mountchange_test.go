package auditguard

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/credchain/credchain/internal/events"
)

// mountsVault is memVault with a Kubernetes auth mount table that changes: every role is on
// each mount listed (the fake keeps one set of roles).
type mountsVault struct {
	memVault
	mounts   []string
	mountErr error
}

func (m *mountsVault) KubernetesMounts(context.Context, string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mounts), m.mountErr
}

func (m *mountsVault) set(mounts []string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mounts, m.mountErr = mounts, err
}

// TestAuthMountChanges (issue 11 item 5): a Kubernetes auth mount disabled is reported with the
// roles indexed under it and their policies; one moved (sys/remount, applied by Vault after its
// response, as 1.21 does) is re-indexed under its new path and reported; an entry Vault's mount
// table does not bear out, or one about another auth method, is not.
func TestAuthMountChanges(t *testing.T) {
	t.Parallel()
	const permissionDenied = "Code: 403. Errors: * permission denied"
	for name, tc := range map[string]struct {
		line   string
		after  []string      // Vault's Kubernetes auth mounts after the request
		delay  time.Duration // when they change, after the entry is ingested
		err    error         // listing them fails after the request
		want   string        // event type; "" for none
		object string
		texts  []string
		// index is the mount of the roles indexed afterwards ("" for none).
		index string
	}{
		"Kubernetes mount disabled": {line: authLine("delete", "sys/auth/kubernetes"), after: []string{},
			want: events.AuthMountDisabled, object: "auth/kubernetes",
			texts: []string{"Kubernetes auth mount auth/kubernetes/ was disabled by userpass-cleanup-bot", "2 roles (eso, inventory)",
				"the policies they referenced (eso-inventory, eso-order-service, eso-payment-service) still exist"}},
		"disabled with a trailing slash": {line: authLine("delete", "sys/auth/kubernetes/"), after: []string{},
			want: events.AuthMountDisabled, object: "auth/kubernetes"},
		"disabled, and the guard's own token with it": {line: authLine("delete", "sys/auth/kubernetes"), err: errors.New(permissionDenied),
			want: events.AuthMountDisabled, object: "auth/kubernetes", texts: []string{"could not confirm with Vault that the mount is gone: " + permissionDenied}, index: "kubernetes"},
		"a disable Vault's mount table does not bear out": {line: authLine("delete", "sys/auth/kubernetes"), after: []string{"kubernetes"}, index: "kubernetes"},
		"another auth method disabled":                    {line: authLine("delete", "sys/auth/userpass"), after: []string{"kubernetes"}, index: "kubernetes"},
		"a failed disable": {line: strings.Replace(authLine("delete", "sys/auth/kubernetes"), `"type":"response"`, `"error":"permission denied","type":"response"`, 1),
			after: []string{}, index: "kubernetes"},
		"Kubernetes mount moved": {line: authLine("update", "sys/remount"), after: []string{"k8s-prod"}, delay: 300 * time.Millisecond,
			want: events.AuthMountMoved, object: "auth/kubernetes", index: "k8s-prod",
			texts: []string{"Kubernetes auth mount auth/kubernetes/ was moved to auth/k8s-prod/ by userpass-cleanup-bot", "stores still configured with mount path kubernetes cannot log in"}},
		"a secrets engine moved": {line: authLine("update", "sys/remount"), after: []string{"kubernetes"}, index: "kubernetes"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store, err := OpenStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			v := &mountsVault{memVault: memVault{policies: map[string]string{"eso-order-service": orderServicePolicyForTest,
				"eso-payment-service": orderServicePolicyForTest, "eso-inventory": orderServicePolicyForTest},
				roles: map[string][]string{"eso": {"eso-order-service", "eso-payment-service", "default"}, "inventory": {"eso-inventory"}}},
				mounts: []string{"kubernetes"}}
			rec := &events.Recorder{}
			g := NewGuard(v, store, rec, nil, testr.New(t))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() { _ = g.Run(ctx) }()
			for !g.Ready() {
				time.Sleep(5 * time.Millisecond)
			}
			if tc.delay == 0 {
				v.set(tc.after, tc.err)
			} else {
				time.AfterFunc(tc.delay, func() { v.set(tc.after, tc.err) })
			}
			g.Ingest([]byte(tc.line))
			// A policy delete behind it: once it is reported, the line before it was processed.
			// For a remount, wait until the move is seen first.
			deadline := time.Now().Add(10 * time.Second)
			for tc.want != "" && len(rec.OfType(tc.want)) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(tc.delay + 100*time.Millisecond)
			marker := strings.Replace(strings.ReplaceAll(deleteEntry, "eso-order-service", "marker"), `"id":"4c1f"`, `"id":"marker"`, 1)
			g.Ingest([]byte(marker))
			for len(rec.OfType(events.PolicyDeleted)) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			var got []events.Event
			for _, e := range rec.All() {
				if e.Type != events.PolicyDeleted {
					got = append(got, e)
				}
			}
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("events = %+v, want none", got)
				}
			} else if len(got) != 1 || got[0].Type != tc.want || got[0].Object != tc.object || got[0].Action != "none" ||
				got[0].Actor == nil || got[0].Actor.DisplayName != "userpass-cleanup-bot" ||
				!slices.Equal(got[0].Roles, []events.RoleRef{{Mount: "kubernetes", Name: "eso"}, {Mount: "kubernetes", Name: "inventory"}}) {
				t.Errorf("events = %+v, want one %s for %s with the two roles", got, tc.want, tc.object)
			} else {
				for _, s := range tc.texts {
					if !strings.Contains(got[0].Message, s) {
						t.Errorf("message %q does not contain %q", got[0].Message, s)
					}
				}
			}
			var mounts []string
			for _, r := range g.index.RolesFor("", "eso-order-service") {
				mounts = append(mounts, r.Mount)
			}
			if want := []string{tc.index}; tc.index == "" && len(mounts) != 0 || tc.index != "" && !slices.Equal(mounts, want) {
				t.Errorf("eso-order-service is indexed under %v, want %q", mounts, tc.index)
			}
		})
	}
}

// TestClassifyRemount: sys/remount is a mount change, and the pre-filter lets its response through
// (not the status reads that follow it).
func TestClassifyRemount(t *testing.T) {
	t.Parallel()
	if k, _ := Classify("sys/remount"); k != KindRemount {
		t.Errorf("Classify(sys/remount) = %v, want KindRemount", k)
	}
	if !Relevant([]byte(authLine("update", "sys/remount"))) {
		t.Error("Relevant dropped a remount")
	}
	if k, _ := Classify("sys/remount/status/4b1c"); k != KindIrrelevant {
		t.Errorf("Classify(sys/remount/status/…) = %v, want KindIrrelevant", k)
	}
	if Relevant([]byte(authLine("read", "sys/remount/status/4b1c"))) {
		t.Error("Relevant passed a remount status read")
	}
}

// TestReferenceScope (issue 11 item 7): an event about a policy no role references says where the
// guard looked, and what it does not look at.
func TestReferenceScope(t *testing.T) {
	t.Parallel()
	const notChecked = "other auth methods, identity groups and token roles are not checked"
	for name, tc := range map[string]struct {
		mounts     []string
		unreadable []string
		want       string
	}{
		"one mount":     {mounts: []string{"kubernetes"}, want: "no Kubernetes auth role on auth/kubernetes/ references it (" + notChecked + ")"},
		"nested mounts": {mounts: []string{"kubernetes", "clusters/prod"}, want: "no Kubernetes auth role on auth/clusters/prod/, auth/kubernetes/ references it (" + notChecked + ")"},
		"none":          {want: "no Kubernetes auth mount is enabled, so no Kubernetes auth role references it (" + notChecked + ")"},
		"one unreadable": {mounts: []string{"kubernetes", "clusters/eu/prod"}, unreadable: []string{"auth/clusters/eu/prod"},
			want: "no Kubernetes auth role on auth/kubernetes/ references it (the roles of auth/clusters/eu/prod/ cannot be read now and were last read without it, if ever; " + notChecked + ")"},
		"all unreadable": {mounts: []string{"kubernetes"}, unreadable: []string{"auth/kubernetes"},
			want: "no Kubernetes auth role credchain last read references it (the roles of auth/kubernetes/ cannot be read now; " + notChecked + ")"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewGuard(nil, nil, nil, nil, testr.New(t))
			g.setKubernetesMounts("", tc.mounts)
			g.unreadable = map[string]bool{}
			for _, m := range tc.unreadable {
				g.unreadable[m] = true
			}
			if got := g.referenceScope(""); got != tc.want {
				t.Errorf("referenceScope =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}
