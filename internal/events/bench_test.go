package events

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// BenchmarkNATSPublish measures one event's delivery on loopback to an in-process nats-server:
// JetStream publish with Nats-Msg-Id waiting for the PubAck (file storage), against the baseline of a
// core publish confirmed by Flush on the same server, in the same process.
func BenchmarkNATSPublish(b *testing.B) {
	for _, mode := range []string{"core-flush", "jetstream-puback"} {
		b.Run(mode, func(b *testing.B) {
			srv := startNATS(b, b.TempDir(), 0) // its own server: the stream would capture core subjects
			sink, err := NewNATS(NATSConfig{URLs: []string{srv.ClientURL()}, Cluster: mode, CreateStream: mode == "jetstream-puback"}, logr.Discard())
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			ctx := context.Background()
			e := event(1)
			if err := sink.Send(ctx, e); err != nil { // warm-up: connection, stream lookup/creation
				b.Fatal(err)
			}
			var lat []time.Duration
			for b.Loop() {
				e.ID = NewID()
				t0 := time.Now()
				if err := sink.Send(ctx, e); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
