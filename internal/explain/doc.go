// Package explain walks one workload's (or one ExternalSecret's) chain, link by link, as the
// incident's runbook did by hand across three systems: the workload's pull secrets and where they
// come from, each Secret, the ExternalSecret that writes it (its status and ESO's latest warning),
// its store, the Vault role the store logs in with, that role's policies, and what each request
// ESO makes is granted or denied by — then the verdict and the fix as commands to run.
//
// It reuses, never restates, the chain's domain knowledge: which ExternalSecret writes which
// Secret and what ESO asks Vault are internal/chain's; how Vault answers is internal/check's
// evaluation (over internal/vaultacl). What is new here is the walk itself: a bounded number of
// direct reads for one chain (Gather), a pure judgement of what they show (Judge), and the fix.
//
// Gather reads Kubernetes with direct GETs and at most one namespace-scoped LIST of
// ExternalSecrets (for Secrets no ExternalSecret owns), and Vault with check.ReadVaultFor (only the
// store's role and its policies). Judge turns those facts into a Report; Write prints it.
package explain
