package events

import (
	"slices"
	"strings"
	"testing"
)

// TestEventsPointAtExplain: an event about workloads carries, and its Slack block shows, the
// command that walks each one's chain — a few of them, never a list as long as the blast radius.
func TestEventsPointAtExplain(t *testing.T) {
	many := &BlastRadius{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		many.Workloads = append(many.Workloads, ObjectRef{Kind: "Deployment", Namespace: "prod", Name: n})
	}
	for name, tc := range map[string]struct {
		e    Event
		want []string
	}{
		"admission event": {e: Event{Type: AdmissionDenied, Workload: &ObjectRef{Kind: "Deployment", Namespace: "prod", Name: "order-service"}},
			want: []string{"credchain explain deployment/order-service -n prod"}},
		"restore with a blast radius": {e: Event{Type: PolicyRestored, BlastRadius: &BlastRadius{Workloads: []ObjectRef{
			{Kind: "CronJob", Namespace: "prod", Name: "nightly"}, {Kind: "Deployment", Namespace: "prod", Name: "order-service"}}}},
			want: []string{"credchain explain cronjob/nightly -n prod", "credchain explain deployment/order-service -n prod"}},
		"capped at three": {e: Event{Type: PolicyDeleted, BlastRadius: many},
			want: []string{"credchain explain deployment/a -n prod", "credchain explain deployment/b -n prod", "credchain explain deployment/c -n prod"}},
		"nothing to explain": {e: Event{Type: AuditDisabled}},
	} {
		t.Run(name, func(t *testing.T) {
			got := withExplain(tc.e)
			if !slices.Equal(got.Explain, tc.want) {
				t.Errorf("Explain = %q, want %q", got.Explain, tc.want)
			}
			block := slackBlock(got)
			for _, c := range tc.want {
				if !strings.Contains(block, "`"+c+"`") {
					t.Errorf("slack block lacks %q:\n%s", c, block)
				}
			}
		})
	}
}
