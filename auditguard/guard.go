package auditguard

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/credchain/credchain/internal/events"
	"github.com/credchain/credchain/internal/inventory"
)

// work is one item of the processing goroutine's queue: a relevant audit line (the zero kind), or
// a job the guard gave itself, which waits its turn behind the lines queued before it. Only the
// fields of its kind are set.
type work struct {
	kind workKind
	// line is the audit line (workLine), with its arrival time: restore latency is measured from
	// it. bytes is what line holds of the queue's byte budget.
	line    []byte
	arrived time.Time
	bytes   int64
	// disableID is the request ID of the audit-device disable whose wait for its response entry
	// ended (workDisableExpired, auditdevice.go).
	disableID string
	// checkpoint is a file sink's progress, saved once processing reaches it (workCheckpoint,
	// checkpoint.go).
	checkpoint *fileCheckpoint
	// remount is the next look at the auth mounts after a remount (workRemountCheck, mounts.go).
	remount *pendingRemount
	// desired is a reading of the desired state's directories (workDesired, desired.go).
	desired *desiredLoad
}

// workKind says what a work item is.
type workKind uint8

const (
	workLine           workKind = iota // an audit line
	workReconcile                      // a reconcile pass, after a (re)connection (Reconnected)
	workDisableExpired                 // an audit-device disable's wait for its response ended
	workCheckpoint                     // a file sink's offset to save
	workRemountCheck                   // look at the auth mounts again after a remount
	workDesired                        // the desired state's directories changed (desired.go)
)

// Guard consumes audit lines and keeps policies referenced by Kubernetes auth roles alive.
type Guard struct {
	vault   VaultAPI
	store   State
	index   *Index
	notify  events.Notifier
	log     logr.Logger
	metrics *Metrics
	opts    options

	queue chan work
	// queueBytes bounds the bytes of the lines in queue; lineBudget the long-line buffers of every
	// reader; connSlots the open socket connections of every SocketSink. Safe from any goroutine.
	queueBytes, lineBudget, connSlots *byteBudget
	// reconcileQueued is set while a reconcile requested by Reconnected waits in the queue: a burst
	// of (re)connections asks for one reconcile, not one each.
	reconcileQueued atomic.Bool

	ready atomic.Bool
	// unparsableLogged is when an unparsable line was last logged (UnixNano), for any sink goroutine.
	unparsableLogged atomic.Int64
	// unparsableLast is when an unparsable line last arrived (UnixNano), for /readyz (health.go).
	unparsableLast atomic.Int64
	seen           *recent
	// blast computes the Kubernetes blast radius of roles once set (it syncs in the background).
	blast atomic.Pointer[Blast]
	// inventory reads every cluster's inventory once set (--inventory, inventory.go).
	inventory atomic.Pointer[inventory.Reader]

	// Everything below is owned by the processing goroutine (Run, and what it calls): no lock.
	// Other goroutines reach the guard only through its queue, its atomics and the Index (which
	// locks itself).

	// namespaces are the Vault namespaces guarded: root and those Vault lists (namespaces.go),
	// never those audit lines name; nsListed is when they were last listed.
	namespaces map[string]bool
	nsListed   time.Time
	// k8sMounts caches each namespace's Kubernetes auth mounts from the last re-index (every resync
	// and every auth mount change), so a role write on a known Kubernetes mount needs no API call.
	k8sMounts map[string][]string
	dangling  map[polKey]bool // reported once until the state changes
	// withheld are the holds already reported (reason and time), so a held policy is reported once
	// per hold, not on every delete entry and reconcile pass.
	withheld map[polKey]string

	// deletes are the recent confirmed deletes of each referenced policy (flap detection), and
	// ownWrites when the guard restored each policy, one mark per restore whose audit entry has not
	// been processed yet (its own write's entry needs no read-back; ownWrite).
	deletes   map[polKey][]time.Time
	ownWrites map[polKey][]time.Time
	// unreadable are the auth mounts (nsMount) the last re-index could not read, reported once.
	unreadable map[string]bool

	// pendingDisables are audit-device disables seen as request entries (by request ID), awaiting their response
	// (auditdevice.go).
	pendingDisables map[string]*Entry
	// auditDevices is what the last check of Vault's audit devices found (auditdevices.go).
	auditDevices auditDeviceState
	// pendingRemounts are the remounts whose effect is being waited for (mounts.go).
	pendingRemounts map[*pendingRemount]bool

	// desired is the desired state in force (desired.go): nil until one has loaded. desiredBad is
	// the fingerprint of the content last found not to load, reported once.
	desired    *Desired
	desiredBad string
	// drifted are the drifts reported and not corrected (drift.go), by the drifted body's hash, so
	// reconcile reports each once.
	drifted map[polKey]string
	// activity is the roles' last logins and since when the guard watched them (active.go): nil
	// until Run loads it.
	activity *activity
}

// Option configures a Guard.
type Option func(*options)

type options struct {
	queueSize         int
	resyncInterval    time.Duration
	reconcileInterval time.Duration
	maxLine           int
	maxConnections    int
	lineBufferBytes   int64
	queueBytes        int64
	vaultAddr         string
	cluster           string
	auditDisableWait  time.Duration
	flapDeletes       int
	flapWindow        time.Duration
	activeNodeOnly    bool
	now               func() time.Time
	activeWindow      time.Duration
	blastConfigured   bool
	// inventoryConfigured: --inventory is set, so until its Reader has loaded, stores of other
	// clusters are not known (every role counts as active).
	inventoryConfigured bool
	leader              func() bool
	replica             string
	alive               func(replica string) bool

	desired              DesiredSource
	desiredPoll          time.Duration
	desiredAuthoritative bool
	correctDrift         bool
}

// WithQueueSize bounds the queue between the readers and processing. Defaults to 8192 entries;
// when full, relevant entries are dropped (counted) and the next reconcile repairs what they missed.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithResyncInterval sets how often the role index and policy snapshots are rebuilt from the API.
// Defaults to 5m.
func WithResyncInterval(d time.Duration) Option { return func(o *options) { o.resyncInterval = d } }

// WithReconcileInterval sets how often referenced-but-missing policies are looked for. Defaults to 1m.
func WithReconcileInterval(d time.Duration) Option {
	return func(o *options) { o.reconcileInterval = d }
}

// WithMaxLine bounds one audit line. Defaults to DefaultMaxLine (64 MiB).
func WithMaxLine(n int) Option { return func(o *options) { o.maxLine = n } }

// WithMaxConnections bounds the open socket connections of every SocketSink together; one more is
// closed at once and counted. Defaults to DefaultMaxConnections (16).
func WithMaxConnections(n int) Option { return func(o *options) { o.maxConnections = n } }

// WithLineBufferBytes bounds the buffers of lines longer than 64 KiB across every reader; a line
// whose buffer it cannot pay for is skipped whole and counted. Defaults to DefaultLineBufferBytes
// (96 MiB).
func WithLineBufferBytes(n int64) Option { return func(o *options) { o.lineBufferBytes = n } }

// WithQueueBytes bounds the bytes of the queued lines; past it relevant lines are dropped and
// counted, as past the queue size. Defaults to DefaultQueueBytes (16 MiB).
func WithQueueBytes(n int64) Option { return func(o *options) { o.queueBytes = n } }

// WithAuditDisableWait sets how long the request entry of an audit-device disable waits for its
// response entry before audit.device_disabled is sent from the request alone. Vault stops writing
// to the device being disabled before it logs the response, so through that device the response
// never comes; it does through another device the guard reads, or when the disable failed.
// Long enough for the file device's poll and a queue that is behind. Defaults to 5s.
func WithAuditDisableWait(d time.Duration) Option { return func(o *options) { o.auditDisableWait = d } }

// WithFlapDetection sets when the guard stops restoring a policy that keeps being deleted: at the
// n-th delete of one policy within window (each confirmed by a read showing it absent), it is not
// restored, policy.restore_failed (reason "flapping") is sent, and the snapshot is held until
// someone writes the policy again. A tool that deletes the policy on every run (an IaC apply, a
// reconciler) would otherwise get a restore each time, forever, with an event for each. Defaults to
// 5 deletes within 10m; n below 1 disables it.
func WithFlapDetection(n int, window time.Duration) Option {
	return func(o *options) { o.flapDeletes, o.flapWindow = n, window }
}

// WithClock sets the guard's clock: every time it stamps, waits on or compares (arrivals, restore
// latency, holds, flap windows, namespace re-listing, events) comes from now, so a test can move
// time instead of sleeping. Safe from any goroutine when now is. Defaults to time.Now. The sinks
// keep their own timers (polls, rotation grace).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithDesiredState makes src the desired state (desired.go): its policies are restored from their
// desired bodies and a write that changes their rules is reported as drift. The directories are
// fingerprinted every poll (defaults to 10s) and reloaded when they change; a state that does
// not load keeps the one in force. Off by default: the snapshot rules alone.
func WithDesiredState(src DesiredSource, poll time.Duration) Option {
	return func(o *options) {
		o.desired = src
		if poll > 0 {
			o.desiredPoll = poll
		}
	}
}

// WithDesiredAuthoritative declares the desired state complete: a policy it does not define is
// not restored when deleted, even when a role names it; the role's reference is reported
// instead. Off by default.
func WithDesiredAuthoritative(on bool) Option {
	return func(o *options) { o.desiredAuthoritative = on }
}

// WithCorrectDrift writes a drifted desired policy's desired body back. Off by default: drift is
// reported only.
func WithCorrectDrift(on bool) Option { return func(o *options) { o.correctDrift = on } }

// WithActiveWindow sets how recent a role's last login must be for the role to be active
// (active.go): a delete of a policy only inactive roles reference is reported, not restored.
// Defaults to 30 days; 0 or less turns the rule off (every role is active).
func WithActiveWindow(d time.Duration) Option { return func(o *options) { o.activeWindow = d } }

// WithBlastRadiusPending tells the guard a blast radius is coming (--blast-radius): until SetBlast,
// no ESO store is known, so every role counts as active rather than none being in use.
func WithBlastRadiusPending(on bool) Option { return func(o *options) { o.blastConfigured = on } }

// WithInventoryPending tells the guard other clusters' inventories are coming (--inventory):
// until SetInventory's Reader has loaded them, every role counts as active.
func WithInventoryPending(on bool) Option { return func(o *options) { o.inventoryConfigured = on } }

// WithLeader makes reconcile run only while leading() (leader.go): with replicas, one of them
// reconciles, so a missing policy is restored and reported once. Defaults to always leading.
func WithLeader(leading func() bool) Option { return func(o *options) { o.leader = leading } }

// WithReplica names this guard in the restore intents it stores (intent.go) and tells whether
// another replica is alive (its heartbeat, leader.go), so that reconcile reports only the
// intents of dead ones. Defaults to "" and no other replica.
func WithReplica(id string, alive func(replica string) bool) Option {
	return func(o *options) { o.replica, o.alive = id, alive }
}

// WithVaultAddr names the Vault in events.
func WithVaultAddr(a string) Option { return func(o *options) { o.vaultAddr = a } }

// WithCluster names the installation in events.
func WithCluster(c string) Option { return func(o *options) { o.cluster = c } }

// NewGuard builds a guard. Call Run to start processing; feed lines with Ingest (the sinks do).
func NewGuard(v VaultAPI, store State, n events.Notifier, m *Metrics, log logr.Logger, opts ...Option) *Guard {
	o := options{queueSize: 8192, resyncInterval: 5 * time.Minute, reconcileInterval: time.Minute,
		maxLine: DefaultMaxLine, maxConnections: DefaultMaxConnections, lineBufferBytes: DefaultLineBufferBytes, queueBytes: DefaultQueueBytes,
		auditDisableWait: 5 * time.Second, flapDeletes: 5, flapWindow: 10 * time.Minute, now: time.Now, desiredPoll: 10 * time.Second,
		activeWindow: 30 * 24 * time.Hour}
	for _, opt := range opts {
		opt(&o)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Guard{vault: v, store: store, index: NewIndex(), notify: n, log: log, metrics: m, opts: o,
		queue: make(chan work, o.queueSize), queueBytes: newByteBudget(o.queueBytes, m.QueueBytes),
		lineBudget: newByteBudget(o.lineBufferBytes, m.LineBufferBytes), connSlots: newByteBudget(int64(o.maxConnections), nil), seen: newRecent(4096), namespaces: map[string]bool{"": true}, dangling: map[polKey]bool{},
		pendingDisables: map[string]*Entry{}, withheld: map[polKey]string{}, deletes: map[polKey][]time.Time{}, ownWrites: map[polKey][]time.Time{},
		drifted: map[polKey]string{}}
}

// SetBlast enables blast-radius computation for events.
func (g *Guard) SetBlast(b *Blast) {
	g.blast.Store(b)
	if b != nil {
		g.metrics.BlastReady.Set(1)
	}
}

// Ready reports whether the first resync from Vault has completed.
func (g *Guard) Ready() bool { return g.ready.Load() }

// Index exposes the reverse index (read-only use).
func (g *Guard) Index() *Index { return g.index }

// Ingest is called by the sinks for every line. It never blocks: Vault waits on the socket write
// of every audited request, so the reader only counts, pre-filters and enqueues a copy.
func (g *Guard) Ingest(line []byte) {
	g.metrics.LinesRead.Inc()
	if !Relevant(line) {
		if !looksLikeEntry(line) {
			g.unparsable("audit line is not a JSON audit entry (format=jsonx?); the guard cannot read it", len(line))
		}
		return
	}
	g.metrics.LinesRelevant.Inc()
	n := int64(len(line))
	if !g.queueBytes.tryAcquire(n) {
		g.metrics.LinesDropped.WithLabelValues("queue_bytes").Inc()
		return
	}
	q := work{line: slices.Clone(line), arrived: g.opts.now(), bytes: n}
	select {
	case g.queue <- q:
		g.metrics.QueueDepth.Set(float64(len(g.queue)))
	default:
		g.queueBytes.release(n)
		g.metrics.LinesDropped.WithLabelValues("queue_full").Inc()
	}
}

// readLines reads r's lines into Ingest within the guard's line bounds (--max-line, and the
// --line-buffer-bytes shared by every reader). For the sinks.
func (g *Guard) readLines(r io.Reader) (int64, error) {
	return lineReader{maxLine: g.opts.maxLine, budget: g.lineBudget, line: g.Ingest,
		tooLong: g.LineTooLong, notEntry: g.LineNotEntry, overBudget: g.lineOverBudget}.read(r)
}

// lineOverBudget counts a long line skipped because --line-buffer-bytes was in use by others.
func (g *Guard) lineOverBudget() { g.metrics.LinesDropped.WithLabelValues("buffer_budget").Inc() }

// unparsableLogEvery spaces the log lines about unparsable audit lines: a device with format=jsonx
// makes every line one, and the counter carries the rate.
const unparsableLogEvery = time.Minute

// unparsable counts a line that cannot be parsed and logs it at most once per unparsableLogEvery
// (never its content: it may hold anything). Safe from any goroutine.
func (g *Guard) unparsable(msg string, size int) {
	g.metrics.LinesUnparsable.Inc()
	now := g.opts.now().UnixNano()
	g.unparsableLast.Store(now)
	last := g.unparsableLogged.Load()
	if now-last < int64(unparsableLogEvery) || !g.unparsableLogged.CompareAndSwap(last, now) {
		return
	}
	g.log.Info(msg, "bytes", size, "metric", "credchain_auditguard_lines_unparsable_total")
}

// LineNotEntry is the sinks' callback for an endless line that is no JSON entry (format=jsonx).
func (g *Guard) LineNotEntry() {
	g.unparsable("audit stream is not JSON audit entries (format=jsonx?); the guard cannot read it", 0)
}

// LineTooLong is the sinks' callback for lines over the limit.
func (g *Guard) LineTooLong() { g.metrics.LinesDropped.WithLabelValues("too_long").Inc() }

// Run loads the desired state (when given), the index and snapshots, reconciles, then processes
// the queue until ctx ends.
// Startup failures (Vault unreachable) are retried with backoff rather than fatal: the sinks keep
// accepting lines meanwhile so Vault is never blocked by the guard.
func (g *Guard) Run(ctx context.Context) error {
	defer g.startDesired(ctx)()
	g.loadActivity()
	defer g.flushLogins(true)
	for backoff := time.Second; ; backoff = min(backoff*2, 30*time.Second) {
		err := g.resync(ctx, "startup")
		if err == nil {
			break
		}
		g.log.Error(err, "initial resync failed; retrying", "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	g.reconcile(ctx)
	g.ready.Store(true)
	resync := time.NewTicker(g.opts.resyncInterval)
	defer resync.Stop()
	reconcile := time.NewTicker(g.opts.reconcileInterval)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-g.queue:
			g.metrics.QueueDepth.Set(float64(len(g.queue)))
			g.queueBytes.release(q.bytes)
			g.process(ctx, q)
		case <-resync.C:
			if err := g.resync(ctx, "resync"); err != nil {
				g.log.Error(err, "resync failed")
			}
		case <-reconcile.C:
			g.flushLogins(false)
			g.reconcile(ctx)
		}
	}
}

// Reconnected is called by the sinks when a Vault node (re)connects: entries may have been lost
// while it was away, so reconcile soon.
func (g *Guard) Reconnected() {
	// Reconcile from the processing goroutine to keep Vault calls single-threaded.
	if !g.reconcileQueued.CompareAndSwap(false, true) {
		return // one is queued already and will see this connection's gap too
	}
	q := work{kind: workReconcile, arrived: g.opts.now()}
	select {
	case g.queue <- q:
	default:
		g.reconcileQueued.Store(false)
	}
}

// process handles one work item: a job the guard queued for itself, or an audit line.
func (g *Guard) process(ctx context.Context, q work) {
	switch q.kind {
	case workCheckpoint:
		g.saveCheckpoint(q.checkpoint)
	case workReconcile:
		g.reconcileQueued.Store(false)
		g.reindexReplica(ctx)
		g.reconcile(ctx)
	case workDisableExpired:
		g.auditDisableExpired(ctx, q.disableID)
		g.checkAuditDevices(ctx)
	case workRemountCheck:
		g.remountCheck(ctx, q.remount)
	case workDesired:
		g.applyDesired(ctx, *q.desired, true)
	default:
		g.processLine(ctx, q)
	}
}

// processLine decodes a relevant line and hands its entry to act, once per request ID, and only
// from a namespace Vault lists.
func (g *Guard) processLine(ctx context.Context, q work) {
	e, err := DecodeEntry(q.line)
	if err != nil {
		g.metrics.DecodeErrors.Inc()
		g.unparsable("skipping an undecodable audit line that looked relevant", len(q.line))
		return
	}
	if e.Type != "response" {
		// The pre-filter passes one kind of request entry: an audit device's disable, whose
		// response the device being disabled never receives.
		if k, _ := Classify(e.Request.Path); k == KindAudit && e.Request.Operation == "delete" {
			g.onAuditDisableRequest(ctx, e, len(q.line))
		}
		return
	}
	if g.seen.check(e.Request.ID) {
		// The same entry from a second device (a file device beside the socket, or two sockets):
		// act once.
		g.metrics.Duplicates.Inc()
		return
	}
	ns := e.Request.Namespace.NSPath()
	if !g.knownNamespace(ctx, ns) {
		g.metrics.LinesDropped.WithLabelValues("unknown_namespace").Inc()
		g.log.V(1).Info("skipping an audit entry from a namespace Vault does not list")
		return
	}
	g.act(ctx, ns, e, q.arrived)
}

// act does what a response entry calls for, by what its path is about. A denied or failed request
// (Vault audits it with an error) changed nothing and triggers nothing, except the audit device
// check.
func (g *Guard) act(ctx context.Context, ns string, e *Entry, arrived time.Time) {
	kind, name := Classify(e.Request.Path)
	op := e.Request.Operation
	failed := e.Error != ""
	switch kind {
	case KindPolicy:
		switch {
		case failed:
		case op == "delete":
			g.onPolicyDeleted(ctx, ns, name, e, arrived)
		case op == "create" || op == "update":
			g.onPolicyWritten(ctx, ns, name, e)
		}
	case KindRole:
		if !failed {
			g.onRoleChanged(ctx, ns, name, op)
		}
	case KindAuthMount:
		if !failed {
			g.onAuthMountChanged(ctx, ns, name, e)
		}
	case KindRemount:
		if !failed {
			g.onRemount(ctx, e)
		}
	case KindAudit:
		if op == "delete" {
			g.onAuditDisableResponse(ctx, ns, name, e)
		}
		if !failed {
			g.checkAuditDevices(ctx)
		}
	case KindIrrelevant:
		g.onLogin(ns, e) // the pre-filter passes Kubernetes logins' responses (active.go)
	}
}

func (g *Guard) updateIndexMetrics() {
	r, p := g.index.Size()
	g.metrics.IndexRoles.Set(float64(r))
	g.metrics.IndexPolicies.Set(float64(p))
}

func (g *Guard) emit(ctx context.Context, e events.Event) {
	e.APIVersion, e.Time, e.Vault, e.Cluster = events.APIVersion, g.opts.now().UTC(), g.opts.vaultAddr, g.opts.cluster
	if e.ID == "" {
		e.ID = eventID(e)
	}
	// An event that computed its own blast radius (policy.weakened: only what it breaks) keeps it.
	if len(e.Roles) > 0 && e.BlastRadius == nil {
		br, err := g.blastRadius(ctx, e.Roles)
		if err != nil {
			g.log.Error(err, "computing blast radius")
		} else {
			e.BlastRadius = br
		}
	}
	g.metrics.Events.WithLabelValues(e.Type).Inc()
	if err := g.notify.Notify(ctx, e); err != nil {
		g.log.Error(err, "notifying", "type", e.Type)
	}
}

// eventID is a new event's ID: derived from the audit entry's request ID when an entry caused
// it, so that every replica reporting that entry's outcome gives it the same ID (JetStream drops
// the copies); random otherwise.
func eventID(e events.Event) string {
	if e.Actor != nil && e.Actor.RequestID != "" {
		return events.IDFor(e.Actor.RequestID, e.Type, e.Namespace, e.Policy, e.Object)
	}
	return events.NewID()
}

// actor is actorOf plus the actor's auth mount, looked up from its entity (best effort: the event
// goes out without it when the lookup fails).
func (g *Guard) actor(ctx context.Context, e *Entry) *events.Actor {
	a := actorOf(e)
	if a.EntityID != "" {
		mounts, err := g.vault.EntityAuthMounts(ctx, e.Request.Namespace.NSPath(), a.EntityID)
		if err != nil {
			g.log.V(1).Info("looking up the actor's auth mount", "error", err.Error())
		}
		a.AuthMount = strings.Join(mounts, ",")
	}
	return a
}

func actorOf(e *Entry) *events.Actor {
	return &events.Actor{DisplayName: e.Auth.DisplayName, EntityID: e.Auth.EntityID, RemoteAddress: e.Request.RemoteAddress, Metadata: e.Auth.Metadata,
		RequestID: e.Request.ID, Operation: e.Request.Operation, Path: e.Request.Path, Source: events.ActorFromAuditEntry}
}

func rolesString(roles []events.RoleRef) string {
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = "auth/" + r.Mount + "/role/" + r.Name
	}
	if len(parts) == 1 {
		return "role " + parts[0]
	}
	return "roles " + strings.Join(parts, ", ")
}

// recent remembers the last n request IDs, so an entry delivered by two audit devices is acted on
// once. Only the processing goroutine uses it.
type recent struct {
	ring []string
	next int
	set  map[string]struct{}
}

func newRecent(n int) *recent {
	return &recent{ring: make([]string, n), set: make(map[string]struct{}, n)}
}

// has reports whether id was recorded, without recording it.
func (r *recent) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

// check records id and reports whether it was already there. Empty IDs are never duplicates.
func (r *recent) check(id string) bool {
	if id == "" {
		return false
	}
	if _, ok := r.set[id]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return false
}
