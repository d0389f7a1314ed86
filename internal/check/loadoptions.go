package check

// LoadOption changes how LoadVaultFiles and LoadTerraform read their input.
type LoadOption func(*loadOptions)

type loadOptions struct {
	authoritative bool
}

// Authoritative declares the files the whole of Vault's policies and roles, as a repository that
// manages every policy and role does: Vault.Complete is set, and a policy or role the files do not
// define is then "missing" (the chain is broken) instead of "unknown". Without it, files are
// taken as part of Vault: absent means not known. Off by default, because a wrong "missing" sends
// people after a policy that is there.
func Authoritative() LoadOption { return func(o *loadOptions) { o.authoritative = true } }

func applyLoadOptions(opts []LoadOption) loadOptions {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
