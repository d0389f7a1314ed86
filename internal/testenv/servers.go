package testenv

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS starts an in-process nats-server with JetStream on loopback (port 0: a free one), storing
// streams in dir. It leaves signals to the process that embeds it.
func NATS(dir string, port int) (*server.Server, error) {
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server not ready after 10s")
	}
	return s, nil
}

// StartNATS is NATS for tests: a fresh store, shut down at cleanup.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	NeedsServer(t, "a nats-server")
	s, err := NATS(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// FreeAddr returns a loopback address nobody listens on right now, for a server started next.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreeAddrT is FreeAddr for tests.
func FreeAddrT(t testing.TB) string {
	t.Helper()
	a, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// StartNATSCluster starts n in-process nats-servers with JetStream clustered over loopback routes
// (a real Raft group: a bucket with 3 replicas needs three servers), shut down at cleanup, and
// returns their client URLs. It waits until JetStream has a meta leader.
func StartNATSCluster(t testing.TB, n int) []string {
	t.Helper()
	NeedsServer(t, "a nats-server cluster")
	routes := make([]string, n)
	clusterPorts := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		clusterPorts[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i])
	}
	var urls []string
	var servers []*server.Server
	for i := range n {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
			NoSigs: true, Cluster: server.ClusterOpts{Name: "credchain-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			Routes: server.RoutesFromStr(strings.Join(routes, ","))}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("nats-server %s not ready after 20s", s.Name())
		}
		urls = append(urls, s.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	for servers[0].JetStreamIsClustered() && !hasMetaLeader(servers) {
		if time.Now().After(deadline) {
			t.Fatal("JetStream cluster has no meta leader after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return urls
}

// hasMetaLeader reports whether a meta leader knows every server as a JetStream peer and every
// server is current: before that, a replicated bucket finds "no suitable peers for placement".
func hasMetaLeader(servers []*server.Server) bool {
	for _, s := range servers {
		if !s.JetStreamIsCurrent() {
			return false
		}
	}
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			return len(s.JetStreamClusterPeers()) == len(servers)
		}
	}
	return false
}
