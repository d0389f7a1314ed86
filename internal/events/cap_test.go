package events

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
)

// natsDefaultMaxPayload is nats-server's default max_payload: a larger message is refused.
const natsDefaultMaxPayload = 1 << 20

// TestNotifyCapsHugeFields: a multi-MB pull-secret name reaches an admission event twice (in the
// workload's denial message and, say, its name); what the sink receives must still fit NATS's
// default max payload, with each free-text field cut to its documented cap and marked.
func TestNotifyCapsHugeFields(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("<!channel>", 300_000) // 3 MB
	sink := &fakeSink{name: "fake"}
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	d, err := NewDispatcher(db, testr.New(t), nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	e := Event{APIVersion: APIVersion, Type: AdmissionDenied, Reason: "unmanaged",
		Workload: &ObjectRef{Kind: "Deployment", Namespace: "prod", Name: huge},
		Actor:    &Actor{DisplayName: huge, Operation: "create"},
		Message:  "deployment prod/x: secret \"" + huge + "\" is not written by any ExternalSecret", Error: huge}
	if err := d.Notify(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event delivered", func() bool { return len(sink.all()) == 1 })
	got := sink.all()[0]
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > natsDefaultMaxPayload {
		t.Fatalf("delivered event is %d bytes, over NATS's default max payload (%d)", len(b), natsDefaultMaxPayload)
	}
	for field, tc := range map[string]struct {
		got string
		max int
	}{
		"message":           {got.Message, 4096},
		"error":             {got.Error, 4096},
		"workload.name":     {got.Workload.Name, 253},
		"actor.displayName": {got.Actor.DisplayName, 253},
	} {
		if want := tc.max + len("…"); len(tc.got) != want || !strings.HasSuffix(tc.got, "…") {
			t.Errorf("%s: %d bytes (suffix %q), want %d ending in …", field, len(tc.got), tail(tc.got), want)
		}
	}
	if got.Workload.Kind != "Deployment" || got.Workload.Namespace != "prod" || got.Reason != "unmanaged" || got.Actor.Operation != "create" {
		t.Errorf("short fields changed: %+v %+v", got.Workload, got.Actor)
	}
	if e.Workload.Name != huge || e.Actor.DisplayName != huge {
		t.Error("capping changed the caller's event")
	}
}

// TestLogNotifierCaps: the log line of an event is capped like the outbox's copy.
func TestLogNotifierCaps(t *testing.T) {
	t.Parallel()
	var line string
	log := funcr.New(func(_, args string) { line = args }, funcr.Options{})
	huge := strings.Repeat("x", 2<<20)
	if err := (LogNotifier{Log: log}).Notify(t.Context(), Event{Type: PolicyDeleted, Policy: huge, Message: huge}); err != nil {
		t.Fatal(err)
	}
	if len(line) > 64<<10 {
		t.Fatalf("log line is %d bytes, want the event capped (≤ 64 KiB here)", len(line))
	}
}

// TestCapBoundsEncodedSize: whatever the input, a capped event encodes to at most MaxEventBytes
// (well under NATS's 1 MiB default), even with every field at its cap in the characters JSON
// escapes six-fold and thousands of list entries; strings stay valid UTF-8 and are cut on a rune.
func TestCapBoundsEncodedSize(t *testing.T) {
	t.Parallel()
	fill := func(s string) Event {
		huge := strings.Repeat(s, 1<<20/len(s)+1)
		refs := make([]ObjectRef, 5000)
		roles := make([]RoleRef, 5000)
		changes := make([]RuleChange, 5000)
		lost := make([]LostAccess, 5000)
		for i := range refs {
			refs[i] = ObjectRef{Kind: huge, Namespace: huge, Name: huge}
			roles[i] = RoleRef{Mount: huge, Name: huge}
			changes[i] = RuleChange{Path: huge, Desired: huge, Vault: huge}
			lost[i] = LostAccess{ExternalSecret: refs[i], Role: roles[i], Path: huge, Capability: huge, Why: huge}
		}
		md := map[string]string{}
		for i := range 1000 {
			md[huge[:100]+string(rune('a'+i%26))+strings.Repeat("k", i)] = huge
		}
		a := &Actor{DisplayName: huge, EntityID: huge, RemoteAddress: huge, AuthMount: huge, Metadata: md, RequestID: huge, Operation: huge, Path: huge}
		return Event{APIVersion: huge, ID: huge, Type: huge, Cluster: huge, Vault: huge, Namespace: huge, Policy: huge, Object: huge,
			Actor: a, Roles: roles, BlastRadius: &BlastRadius{Stores: refs, ExternalSecrets: refs, Secrets: refs, Workloads: refs},
			Workload: &ObjectRef{Kind: huge, Namespace: huge, Name: huge}, Reason: huge, Action: huge,
			SnapshotFrom: &Provenance{Source: huge, Origin: huge, Writer: a}, Message: huge, Error: huge, Rule: huge,
			Drift: &Drift{Added: changes, Removed: changes, Changed: changes}, Lost: lost}
	}
	atCaps := func(s string) Event { // every string exactly at its cap: nothing to cut, yet 1.8 MB encoded
		name, path, msg := strings.Repeat(s, MaxNameBytes), strings.Repeat(s, MaxPathBytes), strings.Repeat(s, MaxMessageBytes)
		refs := make([]ObjectRef, MaxListEntries)
		changes := make([]RuleChange, MaxListEntries)
		lost := make([]LostAccess, MaxListEntries)
		for i := range refs {
			refs[i] = ObjectRef{Kind: name, Namespace: name, Name: name}
			changes[i] = RuleChange{Path: path, Desired: path, Vault: path}
			lost[i] = LostAccess{ExternalSecret: refs[i], Role: RoleRef{Mount: name, Name: name}, Path: path, Capability: name, Why: path}
		}
		return Event{ID: name, Type: name, Policy: name, Vault: path, Message: msg, Error: msg, Workload: &ObjectRef{Name: name},
			BlastRadius: &BlastRadius{Stores: refs, ExternalSecrets: refs, Secrets: refs, Workloads: refs},
			Drift:       &Drift{Added: changes, Removed: changes, Changed: changes}, Lost: lost}
	}
	for name, e := range map[string]Event{
		"at the caps, html characters":      atCaps("<"),
		"control characters (\\u0000 each)": fill("\x00"),
		"html characters (\\u003c each)":    fill("<"),
		"invalid UTF-8 (\\ufffd each)":      fill("\xff"),
		"multi-byte runes":                  fill("é日🔑"),
		"plain ASCII":                       fill("a"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := Cap(e)
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxEventBytes {
				t.Fatalf("capped event encodes to %d bytes, want ≤ MaxEventBytes (%d)", len(b), MaxEventBytes)
			}
			for field, s := range map[string]string{"message": c.Message, "policy": c.Policy, "workload.name": c.Workload.Name} {
				if cut := strings.TrimSuffix(s, Ellipsis); !strings.HasPrefix(e.Message, cut) || !utf8.ValidString(cut) && utf8.ValidString(e.Message) {
					t.Errorf("%s: %q is not a prefix of the original cut on a rune boundary", field, tail(s))
				}
			}
			again, _ := json.Marshal(Cap(c))
			if !bytes.Equal(again, b) {
				t.Error("Cap(Cap(e)) differs from Cap(e)")
			}
			if len(c.Truncated) == 0 || !bytes.Contains(b, []byte(`"truncated":[`)) {
				t.Errorf("truncated = %v, want the cut fields listed", c.Truncated)
			}
		})
	}
}

// TestCapKeepsNormalEvents: an ordinary event passes unchanged (no truncated list).
func TestCapKeepsNormalEvents(t *testing.T) {
	t.Parallel()
	e := event(1)
	e.BlastRadius = &BlastRadius{Workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "order-service"}}}
	e.Actor.Metadata = map[string]string{"username": "cleanup-bot"}
	want, _ := json.Marshal(e)
	got, _ := json.Marshal(Cap(e))
	if !bytes.Equal(got, want) {
		t.Fatalf("Cap changed an ordinary event:\n got %s\nwant %s", got, want)
	}
}

func tail(s string) string {
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

// TestCapCapsBlastRadiusCluster: a blast radius entry's cluster comes from a cluster's inventory
// (its key, at most 253 bytes, but the value is not the publisher's to trust) and is a name.
func TestCapCapsBlastRadiusCluster(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		cluster, want string
		truncated     []string
	}{
		"a name within the cap is kept": {cluster: "eu-1", want: "eu-1"},
		"a longer one is cut":           {cluster: strings.Repeat("c", 300), want: strings.Repeat("c", 253) + "…", truncated: []string{"blastRadius.workloads.cluster"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := event(1)
			e.BlastRadius = &BlastRadius{Workloads: []ObjectRef{{Kind: "Deployment", Namespace: "prod", Name: "a", Cluster: tc.cluster}}}
			got := Cap(e)
			if c := got.BlastRadius.Workloads[0].Cluster; c != tc.want {
				t.Errorf("cluster = %q, want %q", c, tc.want)
			}
			if !slices.Equal(got.Truncated, tc.truncated) {
				t.Errorf("truncated = %q, want %q", got.Truncated, tc.truncated)
			}
		})
	}
}
