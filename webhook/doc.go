// Package webhook is credchain's validating admission webhook: it denies pod-template workloads
// whose pull secrets (from the template, or inherited from the ServiceAccount) are not backed by a
// synced ExternalSecret, deciding from informer caches without an API call.
//
// A review goes handler.go (the admission request → a typed Result, with the metrics and events
// decorators over that function type) → podspec.go (the workload's pull-secret references, read
// straight from the raw object) → decide.go (the decision, over resolve.go's indexed lookups in the
// informer caches that cache.go keeps, and ESO's types in eso.go) → response.go (the denial or warnings, written for the
// person reading kubectl). owner.go knows which controllers' requests are not checked; Run
// (run.go) wires the process; discovery.go finds ESO's API version.
package webhook
