package check

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/testenv"
)

// TestReadVaultFor reads one role's half of the chain from a real Vault with the shipped
// read-only policy: that role and the policies its tokens carry, not the other roles or policies,
// in a number of requests that does not grow with them; a role that does not exist is absent,
// not an error, and so is a named policy that does not exist.
func TestReadVaultFor(t *testing.T) {
	testenv.NeedsServer(t, "vault")
	dv := testenv.StartVault(t)
	root := liveClient(t, dv.Addr, dv.RootToken, nil)
	setUpLiveVault(t, root)
	writeLivePolicy(t, root, "credchain-check", readCheckPolicy(t))
	eso := chain.RoleRef{Mount: "kubernetes", Name: "external-secrets-operator"}
	missing := chain.RoleRef{Mount: "kubernetes", Name: "nope"}

	count := func(extra int) (*Vault, int64) {
		t.Helper()
		for i := range extra {
			writeLivePolicy(t, root, fmt.Sprintf("unrelated-%d", i), `path "x/*" { capabilities = ["read"] }`)
			if _, err := root.Logical().Write(fmt.Sprintf("auth/kubernetes/role/unrelated-%d", i), map[string]any{
				"bound_service_account_names": "a", "bound_service_account_namespaces": "b", "token_policies": "unrelated-0"}); err != nil {
				t.Fatal(err)
			}
		}
		var requests atomic.Int64
		c := liveClient(t, dv.Addr, liveToken(t, root, "credchain-check"), &requests)
		v, err := ReadVaultFor(t.Context(), c, []chain.RoleRef{eso, missing})
		if err != nil {
			t.Fatal(err)
		}
		return v, requests.Load()
	}
	v, n0 := count(0)
	_, n20 := count(20)

	if got := slices.Collect(maps.Keys(v.Roles)); !slices.Equal(got, []chain.RoleRef{eso}) || !v.Complete {
		t.Errorf("roles %v (complete %v), want only %v", got, v.Complete, eso)
	}
	// The role names eso-order-service and eso-payments; default comes with its token.
	if got, want := slices.Sorted(maps.Keys(v.Policies)), []string{"default", "eso-order-service", "eso-payments"}; !slices.Equal(got, want) {
		t.Errorf("policies %v, want %v", got, want)
	}
	// sys/auth, the mount's LIST, the policies' LIST, one role, three policies.
	if n0 != 7 || n20 != n0 {
		t.Errorf("%d requests with 3 roles and 4 policies in Vault, %d with 20 more of each: want 7 both times", n0, n20)
	}
	t.Logf("ReadVaultFor: %d Vault requests (with 20 unrelated roles and policies more: %d)", n0, n20)
	if r := v.Roles[eso]; BindingRefusal(r, chain.ServiceAccountName{Namespace: "external-secrets", Name: "external-secrets"}) != "" ||
		BindingRefusal(r, chain.ServiceAccountName{Namespace: "prod", Name: "external-secrets"}) == "" {
		t.Errorf("BindingRefusal disagrees with the role's bindings %v %v", r.BoundServiceAccountNames, r.BoundServiceAccountNamespaces)
	}
}
