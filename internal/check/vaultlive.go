package check

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/sync/errgroup"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/vaultacl"
)

// CheckPolicyFile is the read-only policy a live read needs, as shipped; its errors name it.
const CheckPolicyFile = "manifests/vault/check-policy.hcl"

// ErrVaultPermissionDenied is what a live read's error matches (errors.Is) when Vault refused one
// of its reads: the token lacks CheckPolicyFile's policy. The error names the path.
var ErrVaultPermissionDenied = errors.New("permission denied")

// readParallelism bounds the reads in flight: 500 policies are not 500 round trips one after
// another (at a 5 ms round trip, 2.5 s), yet a check run from CI does not hit Vault with hundreds
// of requests at once either.
const readParallelism = 8

// ReadVault reads the Vault half of the chain from a live Vault with c's token, read-only:
// sys/auth for the Kubernetes auth mounts (type "kubernetes"), each mount's roles (one LIST, then
// one read per role), and every ACL policy (one LIST, one read per policy) — 2 + mounts + roles +
// policies requests, whatever the number of ExternalSecrets, up to readParallelism at a time. The
// token needs CheckPolicyFile's policy and nothing more; a refused read is an error naming the
// path, which matches ErrVaultPermissionDenied.
//
// The result is Complete: what Vault does not hold does not exist. Mounts are the Kubernetes auth
// mounts only (a store naming a mount of another type cannot log in with Kubernetes auth either).
// The root policy is not read (Vault lists it but holds no text for it; vaultacl treats the name
// itself as root). A policy Vault holds that vaultacl refuses to parse is an error too: check
// cannot judge it, and Vault evidently accepted it, so it is a disagreement worth reporting.
func ReadVault(ctx context.Context, c *vaultapi.Client) (*Vault, error) {
	v, err := readMounts(ctx, c)
	if err != nil {
		return nil, err
	}
	roleRefs, policyNames, err := listRolesAndPolicies(ctx, c, v.Mounts)
	if err != nil {
		return nil, err
	}
	roles := make([]*Role, len(roleRefs))
	policies := make([]*vaultacl.Policy, len(policyNames))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readParallelism)
	for i, ref := range roleRefs {
		g.Go(func() (err error) { roles[i], err = readRole(gctx, c, ref); return err })
	}
	for i, name := range policyNames {
		g.Go(func() (err error) { policies[i], err = readPolicy(gctx, c, name); return err })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range roles {
		v.Roles[r.Ref()] = r
	}
	for _, p := range policies {
		v.Policies[p.Name], v.PolicySources[p.Name] = p, p.File
	}
	return v, nil
}

// readMounts starts a reading of the live Vault behind c, for ReadVault and ReadVaultFor: a
// Complete Vault holding only its Kubernetes auth mounts (sys/auth, type "kubernetes").
func readMounts(ctx context.Context, c *vaultapi.Client) (*Vault, error) {
	v := &Vault{Source: "vault " + c.Address(), Policies: vaultacl.Set{}, PolicySources: map[string]string{},
		Roles: map[chain.RoleRef]*Role{}, Mounts: map[string]bool{}, Complete: true}
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return nil, vaultReadError("read", "sys/auth", err)
	}
	for path, m := range auths {
		if m != nil && m.Type == "kubernetes" {
			v.Mounts[strings.Trim(path, "/")] = true
		}
	}
	return v, nil
}

// listRolesAndPolicies lists every mount's roles and the policies, in parallel; sorted, so that
// the reads that follow, and their errors, come in a stable order.
func listRolesAndPolicies(ctx context.Context, c *vaultapi.Client, mounts map[string]bool) ([]chain.RoleRef, []string, error) {
	mountList := make([]string, 0, len(mounts))
	for m := range mounts {
		mountList = append(mountList, m)
	}
	sort.Strings(mountList)
	roleNames := make([][]string, len(mountList))
	var policyNames []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readParallelism)
	for i, m := range mountList {
		g.Go(func() (err error) { roleNames[i], err = listKeys(gctx, c, "auth/"+m+"/role"); return err })
	}
	g.Go(func() (err error) { policyNames, err = listKeys(gctx, c, "sys/policies/acl"); return err })
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var refs []chain.RoleRef
	for i, m := range mountList {
		for _, name := range roleNames[i] {
			refs = append(refs, chain.RoleRef{Mount: m, Name: name})
		}
	}
	policyNames = slices.DeleteFunc(policyNames, func(n string) bool { return n == "root" })
	return refs, policyNames, nil
}

// listKeys LISTs path; a 404 is an empty list (Vault's answer for a mount without roles).
func listKeys(ctx context.Context, c *vaultapi.Client, path string) ([]string, error) {
	s, err := c.Logical().ListWithContext(ctx, path)
	if err != nil {
		return nil, vaultReadError("list", path, err)
	}
	if s == nil || s.Data == nil {
		return nil, nil
	}
	keys, err := stringList(s.Data, "keys")
	if err != nil {
		return nil, fmt.Errorf("reading Vault: list %s: %w", path, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// readRole reads one Kubernetes auth role: only the fields check uses.
func readRole(ctx context.Context, c *vaultapi.Client, ref chain.RoleRef) (*Role, error) {
	path := "auth/" + ref.Mount + "/role/" + ref.Name
	s, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, vaultReadError("read", path, err)
	}
	if s == nil || s.Data == nil {
		// Listed a moment ago, deleted since: Vault changed under the read.
		return nil, fmt.Errorf("reading Vault: read %s: role listed but gone when read; run check again", path)
	}
	r := &Role{Mount: ref.Mount, Name: ref.Name, Source: "vault:" + path}
	var errs []error
	for key, dst := range map[string]*[]string{
		"token_policies":                   &r.TokenPolicies,
		"policies":                         &r.Policies,
		"bound_service_account_names":      &r.BoundServiceAccountNames,
		"bound_service_account_namespaces": &r.BoundServiceAccountNamespaces,
	} {
		var err error
		if *dst, err = stringList(s.Data, key); err != nil {
			errs = append(errs, err)
		}
	}
	if b, ok := s.Data["token_no_default_policy"].(bool); ok {
		r.NoDefaultPolicy = b
	} else if s.Data["token_no_default_policy"] != nil {
		errs = append(errs, fmt.Errorf("token_no_default_policy: want a bool, got %T", s.Data["token_no_default_policy"]))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("reading Vault: read %s: %w", path, errors.Join(errs...))
	}
	return r, nil
}

// readPolicy reads and parses one ACL policy.
func readPolicy(ctx context.Context, c *vaultapi.Client, name string) (*vaultacl.Policy, error) {
	path := "sys/policies/acl/" + name
	s, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return nil, vaultReadError("read", path, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("reading Vault: read %s: policy listed but gone when read; run check again", path)
	}
	text, ok := s.Data["policy"].(string)
	if !ok {
		return nil, fmt.Errorf("reading Vault: read %s: no policy text in the answer", path)
	}
	p, err := vaultacl.Parse(name, "vault:"+path, text)
	if err != nil {
		return nil, fmt.Errorf("reading Vault: policy %q, which Vault holds, does not parse as Vault 1.21 policy: %w", name, err)
	}
	return p, nil
}

// vaultReadError says which read failed; a refusal names the policy that grants it.
func vaultReadError(op, path string, err error) error {
	if re, ok := errors.AsType[*vaultapi.ResponseError](err); ok && re.StatusCode == http.StatusForbidden {
		return fmt.Errorf("reading Vault: %s %s: %w: the token needs the read-only policy %s (vault policy write credchain-check %s)",
			op, path, ErrVaultPermissionDenied, CheckPolicyFile, CheckPolicyFile)
	}
	return fmt.Errorf("reading Vault: %s %s: %w", op, path, err)
}

// stringList reads a list of strings from a Vault answer's data; absent is nil.
func stringList(data map[string]any, key string) ([]string, error) {
	raw, ok := data[key]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list, got %T", key, raw)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s: want strings, got %T in the list", key, e)
		}
		out = append(out, s)
	}
	return out, nil
}
