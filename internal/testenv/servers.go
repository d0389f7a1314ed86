package testenv

import (
	"fmt"
	"net"
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
