// Package chain is credchain's one model of the chain it guards, and the only place that knows how
// ESO, Kubernetes and Vault link:
//
//	workload → pull secrets (its pod template's, or its ServiceAccount's) → Secret → ExternalSecret
//	→ SecretStore / ClusterSecretStore → Vault address, namespace, auth mount, role → the role's policies
//
// The ESO types here decode only the fields credchain reads (ESO's own Go module pins other
// Kubernetes releases). The webhook's decision reads them from its informer indexes; the guard's
// blast radius and `check` build an Objects from informer caches (List) or from YAML files
// (LoadManifests) and walk it. The Vault half — what a role's policies grant — is internal/vaultacl.
package chain
