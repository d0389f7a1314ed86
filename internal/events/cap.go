package events

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Caps on what one event carries. Every string in an event can come from outside credchain: a
// pull-secret name (the API server does not validate imagePullSecrets names, so a multi-MB one makes
// a multi-MB denial message), an audit line's display name or path. Uncapped, one such event is
// larger than NATS's default max payload (1 MiB) and is refused however often it is retried, a Slack
// message larger than Slack accepts, a multi-MB log line and outbox entry. The caps are applied
// where events enter delivery (Dispatcher.Notify, LogNotifier), so both components get them.
const (
	// MaxNameBytes caps names and identifiers: policy, role and mount names, Kubernetes kinds,
	// namespaces and names (253 bytes is the longest Kubernetes object name), actor fields, reasons,
	// metadata keys and values, the event ID and type.
	MaxNameBytes = 253
	// MaxPathBytes caps paths and addresses: the Vault address and namespace, Object, the actor's
	// request path and auth mount.
	MaxPathBytes = 1024
	// MaxMessageBytes caps Message and Error: a denial naming a few secrets and ESO's last warning
	// fits in well under 4 KiB.
	MaxMessageBytes = 4096
	// MaxListEntries caps Roles, each BlastRadius and Drift list, and Lost.
	MaxListEntries = 100
	// MaxMetadataEntries caps an actor's metadata (Vault's auth metadata has a handful of keys);
	// the keys kept are the first in sorted order.
	MaxMetadataEntries = 16
	// MaxEventBytes caps the JSON encoding of a whole event, a quarter of NATS's default max payload.
	// With every string at its cap in characters JSON escapes six-fold (control characters, <, >, &,
	// invalid UTF-8), an event without lists is about 225 KiB and fits, so the lists are halved,
	// longest first, until the event fits (metadata would go next; the arithmetic says it never has to).
	MaxEventBytes = 256 << 10
)

// Ellipsis ends every string Cap shortened.
const Ellipsis = "…"

// Cap returns e with every field within the caps above, listing each field it shortened in
// Truncated (e.g. "message", "workload.name", "blastRadius.workloads"). Strings are cut on a rune
// boundary and end in "…" (so a capped name is 253 bytes plus the 3 of "…"). e itself is not
// modified.
// An event within the caps comes back unchanged.
func Cap(e Event) Event {
	c := capper{}
	e.APIVersion = c.str("apiVersion", e.APIVersion, MaxNameBytes)
	e.ID = c.str("id", e.ID, MaxNameBytes)
	e.Type = c.str("type", e.Type, MaxNameBytes)
	e.Cluster = c.str("cluster", e.Cluster, MaxNameBytes)
	e.Vault = c.str("vault", e.Vault, MaxPathBytes)
	e.Namespace = c.str("namespace", e.Namespace, MaxPathBytes)
	e.Policy = c.str("policy", e.Policy, MaxNameBytes)
	e.Object = c.str("object", e.Object, MaxPathBytes)
	e.Reason = c.str("reason", e.Reason, MaxNameBytes)
	e.Action = c.str("action", e.Action, MaxNameBytes)
	e.Rule = c.str("rule", e.Rule, MaxNameBytes)
	e.Active = c.active(e.Active)
	e.Message = c.str("message", e.Message, MaxMessageBytes)
	e.Error = c.str("error", e.Error, MaxMessageBytes)
	e.Actor = c.actor("actor", e.Actor)
	if e.Workload != nil {
		w := c.ref("workload", *e.Workload)
		e.Workload = &w
	}
	if e.SnapshotFrom != nil {
		p := *e.SnapshotFrom
		p.Source = c.str("snapshotFrom.source", p.Source, MaxNameBytes)
		p.Origin = c.str("snapshotFrom.origin", p.Origin, MaxPathBytes)
		p.Writer = c.actor("snapshotFrom.writer", p.Writer)
		e.SnapshotFrom = &p
	}
	if e.Roles != nil {
		roles := capList(&c, "roles", e.Roles)
		e.Roles = make([]RoleRef, len(roles))
		for i, r := range roles {
			e.Roles[i] = RoleRef{Mount: c.str("roles.mount", r.Mount, MaxNameBytes), Name: c.str("roles.name", r.Name, MaxNameBytes)}
		}
	}
	if br := e.BlastRadius; br != nil {
		e.BlastRadius = &BlastRadius{
			Stores:          c.refs("blastRadius.stores", br.Stores),
			ExternalSecrets: c.refs("blastRadius.externalSecrets", br.ExternalSecrets),
			Secrets:         c.refs("blastRadius.secrets", br.Secrets),
			Workloads:       c.refs("blastRadius.workloads", br.Workloads),
		}
	}
	if d := e.Drift; d != nil {
		e.Drift = &Drift{Added: c.changes("drift.added", d.Added), Removed: c.changes("drift.removed", d.Removed),
			Changed: c.changes("drift.changed", d.Changed)}
	}
	e.Lost = c.lost("lost", e.Lost)
	if len(c.cut) == 0 && 6*c.bytes+64*c.fields <= MaxEventBytes {
		return e // the common case: nothing cut, and the event cannot encode to more than the cap
	}
	truncated := slices.Clone(e.Truncated)
	for _, f := range c.cut {
		if !slices.Contains(truncated, f) {
			truncated = append(truncated, f)
		}
	}
	e.Truncated = truncated
	fitEncoded(&e)
	return e
}

// active caps an ActiveRole's strings; nil stays nil.
func (c *capper) active(in *ActiveRole) *ActiveRole {
	if in == nil {
		return nil
	}
	a := *in
	a.Role = RoleRef{Mount: c.str("active.role.mount", a.Role.Mount, MaxNameBytes), Name: c.str("active.role.name", a.Role.Name, MaxNameBytes)}
	a.Why = c.str("active.why", a.Why, MaxNameBytes)
	a.Store = c.str("active.store", a.Store, MaxPathBytes)
	return &a
}

// fitEncoded shortens e's lists, longest first, then drops actor metadata, until its JSON encoding
// fits MaxEventBytes. Only events with fields cut or long strings get here, and only pathological
// ones (hundreds of list entries of names in escaped characters) loop.
func fitEncoded(e *Event) {
	mark := func(f string) {
		if !slices.Contains(e.Truncated, f) {
			e.Truncated = append(e.Truncated, f)
		}
	}
	for {
		b, err := json.Marshal(e)
		if err != nil || len(b) <= MaxEventBytes {
			return
		}
		type list struct {
			name string
			n    int
			cut  func(int)
		}
		lists := []list{{"roles", len(e.Roles), func(n int) { e.Roles = e.Roles[:n] }}}
		if br := e.BlastRadius; br != nil {
			lists = append(lists,
				list{"blastRadius.stores", len(br.Stores), func(n int) { br.Stores = br.Stores[:n] }},
				list{"blastRadius.externalSecrets", len(br.ExternalSecrets), func(n int) { br.ExternalSecrets = br.ExternalSecrets[:n] }},
				list{"blastRadius.secrets", len(br.Secrets), func(n int) { br.Secrets = br.Secrets[:n] }},
				list{"blastRadius.workloads", len(br.Workloads), func(n int) { br.Workloads = br.Workloads[:n] }})
		}
		lists = append(lists, list{"lost", len(e.Lost), func(n int) { e.Lost = e.Lost[:n] }})
		if d := e.Drift; d != nil {
			lists = append(lists,
				list{"drift.added", len(d.Added), func(n int) { d.Added = d.Added[:n] }},
				list{"drift.removed", len(d.Removed), func(n int) { d.Removed = d.Removed[:n] }},
				list{"drift.changed", len(d.Changed), func(n int) { d.Changed = d.Changed[:n] }})
		}
		longest := slices.MaxFunc(lists, func(a, b list) int { return a.n - b.n })
		switch {
		case longest.n > 0:
			longest.cut(longest.n / 2)
			mark(longest.name)
		case e.Actor != nil && e.Actor.Metadata != nil:
			e.Actor.Metadata = nil
			mark("actor.metadata")
		case e.SnapshotFrom != nil && e.SnapshotFrom.Writer != nil && e.SnapshotFrom.Writer.Metadata != nil:
			e.SnapshotFrom.Writer.Metadata = nil
			mark("snapshotFrom.writer.metadata")
		default:
			return // cannot happen within the caps (see MaxEventBytes)
		}
	}
}

// capper applies the caps and remembers which fields it cut (each once). bytes and fields are the
// strings' total length and number, so that 6*bytes + 64*fields (every byte escaped six-fold, a key
// and punctuation per string) bounds the encoding without encoding.
type capper struct {
	cut           []string
	bytes, fields int
}

func (c *capper) mark(field string) {
	if !slices.Contains(c.cut, field) {
		c.cut = append(c.cut, field)
	}
}

func (c *capper) str(field, s string, max int) string {
	c.fields++
	if len(s) <= max || len(s) <= max+len(Ellipsis) && strings.HasSuffix(s, Ellipsis) {
		c.bytes += len(s)
		return s // within its cap, or capped already: Cap(Cap(e)) is Cap(e)
	}
	c.mark(field)
	s = truncate(s, max)
	c.bytes += len(s)
	return s
}

func (c *capper) ref(field string, r ObjectRef) ObjectRef {
	out := ObjectRef{Kind: c.str(field+".kind", r.Kind, MaxNameBytes), Namespace: c.str(field+".namespace", r.Namespace, MaxNameBytes),
		Name: c.str(field+".name", r.Name, MaxNameBytes)}
	if r.Cluster != "" { // counted only when set: a single-cluster event's size bound stays as it was
		out.Cluster = c.str(field+".cluster", r.Cluster, MaxNameBytes)
	}
	return out
}

func (c *capper) refs(field string, rs []ObjectRef) []ObjectRef {
	if rs == nil {
		return nil
	}
	rs = capList(c, field, rs)
	out := make([]ObjectRef, len(rs))
	for i, r := range rs {
		out[i] = c.ref(field, r)
	}
	return out
}

// changes caps a Drift's list: its length, and each rule's path and grants as paths (a rule's
// restrictions name parameters, so its grants can be as long as its path).
func (c *capper) changes(field string, cs []RuleChange) []RuleChange {
	if cs == nil {
		return nil
	}
	cs = capList(c, field, cs)
	out := make([]RuleChange, len(cs))
	for i, r := range cs {
		out[i] = RuleChange{Path: c.str(field+".path", r.Path, MaxPathBytes), Desired: c.str(field+".desired", r.Desired, MaxPathBytes),
			Vault: c.str(field+".vault", r.Vault, MaxPathBytes)}
	}
	return out
}

func (c *capper) actor(field string, a *Actor) *Actor {
	if a == nil {
		return nil
	}
	out := Actor{
		DisplayName:   c.str(field+".displayName", a.DisplayName, MaxNameBytes),
		EntityID:      c.str(field+".entityId", a.EntityID, MaxNameBytes),
		RemoteAddress: c.str(field+".remoteAddress", a.RemoteAddress, MaxNameBytes),
		AuthMount:     c.str(field+".authMount", a.AuthMount, MaxPathBytes),
		RequestID:     c.str(field+".requestId", a.RequestID, MaxNameBytes),
		Operation:     c.str(field+".operation", a.Operation, MaxNameBytes),
		Path:          c.str(field+".path", a.Path, MaxPathBytes),
		Source:        c.str(field+".source", a.Source, MaxNameBytes),
	}
	if a.Metadata != nil {
		keys := slices.Sorted(maps.Keys(a.Metadata))
		if len(keys) > MaxMetadataEntries {
			keys = keys[:MaxMetadataEntries]
			c.mark(field + ".metadata")
		}
		out.Metadata = make(map[string]string, len(keys))
		for _, k := range keys {
			out.Metadata[c.str(field+".metadata", k, MaxNameBytes)] = c.str(field+".metadata", a.Metadata[k], MaxNameBytes)
		}
	}
	return &out
}

func capList[T any](c *capper, field string, l []T) []T {
	if len(l) <= MaxListEntries {
		return l
	}
	c.mark(field)
	return l[:MaxListEntries]
}

// truncate cuts s to at most max bytes on a rune boundary and appends "…". Invalid UTF-8 is left
// to encoding/json, which writes each invalid byte as \ufffd (counted in MaxEventBytes' arithmetic).
func truncate(s string, max int) string {
	i := max
	// Step back over at most UTFMax-1 continuation bytes to the start of the rune that crosses max.
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	return s[:i] + Ellipsis
}

// lost caps policy.weakened's list: its length, each ExternalSecret and role as names, the path
// and the spec field as paths.
func (c *capper) lost(field string, ls []LostAccess) []LostAccess {
	if ls == nil {
		return nil
	}
	ls = capList(c, field, ls)
	out := make([]LostAccess, len(ls))
	for i, l := range ls {
		out[i] = LostAccess{ExternalSecret: c.ref(field+".externalSecret", l.ExternalSecret),
			Role: RoleRef{Mount: c.str(field+".role.mount", l.Role.Mount, MaxNameBytes), Name: c.str(field+".role.name", l.Role.Name, MaxNameBytes)},
			Path: c.str(field+".path", l.Path, MaxPathBytes), Capability: c.str(field+".capability", l.Capability, MaxNameBytes),
			Why: c.str(field+".why", l.Why, MaxPathBytes)}
	}
	return out
}
