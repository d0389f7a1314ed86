package explain

import (
	"context"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credchain/credchain/internal/chain"
	"github.com/credchain/credchain/internal/check"
)

// ErrTargetNotFound is what Gather's error matches when the workload or ExternalSecret to explain
// does not exist: bad input, not a broken chain.
var ErrTargetNotFound = errors.New("not found")

// Options are Gather's inputs beyond the cluster.
type Options struct {
	// ESOAccount is ESO's own ServiceAccount. Defaults to external-secrets/external-secrets.
	ESOAccount chain.ServiceAccountName
	// Vault is the client to read Vault with, its token set; nil leaves the Vault half out, and
	// VaultNotChecked says why (no address, no token).
	Vault           *vaultapi.Client
	VaultNotChecked string
	// Bodies are the last known policy bodies for the fix. Defaults to none.
	Bodies *Bodies
	// Registry, when set, tries each pull secret's credential at its registries (--registry-check).
	Registry *RegistryChecker
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.ESOAccount == (chain.ServiceAccountName{}) {
		o.ESOAccount = chain.ServiceAccountName{Namespace: "external-secrets", Name: "external-secrets"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Vault == nil && o.VaultNotChecked == "" {
		o.VaultNotChecked = "no Vault client"
	}
}

// Gather reads one chain: the target, then each link it leads to, with direct reads (see
// kube.go for the Kubernetes half's bound), then Vault for the stores' roles only. A link that
// cannot be read is recorded as such and the walk goes on; only the target itself failing to
// read is an error (ErrTargetNotFound when it does not exist).
func Gather(ctx context.Context, kube client.Reader, t Target, o Options) (*Facts, error) {
	o.setDefaults()
	f := &Facts{Target: t, Now: o.Now(), ESOAccount: o.ESOAccount, Bodies: o.Bodies, RegistryCheck: o.Registry != nil,
		ExternalSecrets: map[string]*ExternalSecretFacts{}, Stores: map[chain.StoreKey]*StoreFacts{}}
	k := &kubeReader{c: kube, ns: t.Namespace, f: f}
	if err := k.readTarget(ctx); err != nil {
		return nil, err
	}
	k.readSecrets(ctx)
	k.readExternalSecrets(ctx)
	k.readStores(ctx)
	if o.Registry != nil {
		for _, s := range f.Secrets {
			s.Registries = o.Registry.CheckSecret(ctx, s.Secret)
		}
	}
	readVault(ctx, f, o)
	return f, nil
}

// readVault reads the stores' roles and their policies, and evaluates each ExternalSecret as
// `check` does; a Vault that cannot be read leaves the half out, saying why.
func readVault(ctx context.Context, f *Facts, o Options) {
	if o.Vault == nil {
		f.VaultNotChecked = o.VaultNotChecked
		return
	}
	f.VaultAddr = o.Vault.Address()
	var roles []chain.RoleRef
	for _, sf := range f.Stores {
		if sf.Store != nil {
			if ref, ok := sf.Store.KubernetesRole(); ok {
				roles = append(roles, ref)
			}
		}
	}
	if len(roles) == 0 {
		f.VaultNotChecked = "no store logs in to Vault with Kubernetes auth"
		return
	}
	v, err := check.ReadVaultFor(ctx, o.Vault, roles)
	if err != nil {
		f.VaultNotChecked = err.Error()
		return
	}
	f.Vault = v
	f.Results = evaluate(f, v)
	f.RoleData = map[chain.RoleRef]map[string]any{}
	for _, res := range f.Results {
		if res.Role == nil || !hasReason(res, check.CodeNotBound) {
			continue
		}
		ref := chain.RoleRef{Mount: res.Role.Mount, Name: res.Role.Name}
		if _, done := f.RoleData[ref]; done {
			continue
		}
		s, err := o.Vault.Logical().ReadWithContext(ctx, "auth/"+ref.Mount+"/role/"+ref.Name)
		if err == nil && s != nil {
			f.RoleData[ref] = s.Data
		}
	}
}

// evaluate is check.Check over just this chain: its ExternalSecrets and the stores they read.
func evaluate(f *Facts, v *check.Vault) map[string]*check.Result {
	o := &chain.Objects{}
	for _, ef := range f.ExternalSecrets {
		if ef.ES != nil {
			o.ExternalSecrets = append(o.ExternalSecrets, ef.ES)
		}
	}
	for _, sf := range f.Stores {
		if sf.Store != nil {
			o.Stores = append(o.Stores, sf.Store)
		}
	}
	r := check.Check(chain.NewModel(o), v, check.WithESOServiceAccount(f.ESOAccount.Namespace, f.ESOAccount.Name))
	out := make(map[string]*check.Result, len(r.ExternalSecrets))
	for i := range r.ExternalSecrets {
		res := &r.ExternalSecrets[i]
		out[res.ExternalSecret.Name] = res
	}
	return out
}

func hasReason(res *check.Result, code string) bool {
	for _, r := range res.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// targetError says the target could not be read, ErrTargetNotFound when it does not exist.
func targetError(t Target, err error, notFound bool) error {
	if notFound {
		return fmt.Errorf("%s: %w", t, ErrTargetNotFound)
	}
	return fmt.Errorf("reading %s: %w", t, err)
}
