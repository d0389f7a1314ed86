// Package auditguard is a Vault audit-device sink (socket, file, stdin) that keeps a reverse index
// policy → Kubernetes auth roles and restores policies that roles still reference when someone
// deletes them — the root cause of the order-service incident — then says who did it.
//
// A line travels one way. A source (SocketSink, FileSink) reads it on its own goroutine and hands
// it to the guard through the small ingest interface (ingest.go); the pre-filter (prefilter.go)
// decides from its bytes alone whether it can matter, so Vault, which waits on every socket write,
// never waits for the guard. Relevant lines and the guard's own jobs queue as typed work items for
// the one processing goroutine (guard.go), which decodes the entry (entry.go), classifies its path
// (classify.go) and acts: restores and holds (restore.go), resyncs and reconciles (reconcile.go),
// auth mount changes (mounts.go), audit devices (auditdevice.go, auditdevices.go), namespaces
// (namespaces.go); the IaC's desired state and drift from it (desired.go, drift.go); writes that take
// away access ESO needs (weakened.go), judged on the chain model the blast radius keeps (blast.go).
// Everything the guard acts on is read back from Vault first: a line is a hint.
// What the guard keeps across restarts is in store.go; its bounds in bounds.go; Run (run.go)
// wires the process.
package auditguard
