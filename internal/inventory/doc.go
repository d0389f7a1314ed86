// Package inventory carries each cluster's part of the chain to the guard over a NATS JetStream
// key-value bucket, so the guard reports the blast radius of a Vault role — and tells an active
// role from an unused one — across every cluster, without Kubernetes credentials for any of them
// (issue 16 item 2).
//
//	webhook in cluster A ─ Publisher ─┐
//	webhook in cluster B ─ Publisher ─┼─▶ KV bucket (key = cluster name, TTL) ─▶ Reader ─ guard
//	webhook in cluster C ─ Publisher ─┘
//
// An Inventory is built from the chain model (internal/chain) where the objects are: the ESO stores
// with a Vault provider (address, namespace, auth mount and role) and, per Kubernetes auth role,
// the blast radius Model.Impact gives. Precomputing the radius per role at the source keeps the
// walk in its one home (the guard has no objects to walk) and makes the guard's lookup a map
// lookup; it costs little on the wire, because an ExternalSecret has one store and so appears under
// one role (only a workload pulling from ExternalSecrets of two roles is listed twice). The
// encoding is versioned JSON, gzip-compressed (see Encode and docs/inventory.md for measured
// sizes).
//
// Each cluster writes one key, its name, so a NATS permission can confine a cluster's user to
// $KV.<bucket>.<cluster>; the value is re-published every TTL/3 as a heartbeat, and a cluster that
// stops publishing ages out of the Reader after the TTL (and out of the bucket server-side by the
// bucket's max age).
package inventory
