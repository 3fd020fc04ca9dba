package jetstream

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// testCluster is a JetStream cluster of in-process servers with routes and
// client listeners on loopback.
type testCluster struct {
	servers map[string]*server.Server // by server name
}

// startCluster starts n servers that route to each other and waits for
// JetStream's meta group to have a leader.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	ports := freePorts(t, 2*n) // client ports, then route ports
	clientPorts, routePorts := ports[:n], ports[n:]
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	cl := &testCluster{servers: map[string]*server.Server{}}
	for i := range n {
		opts := &server.Options{
			ServerName:         fmt.Sprint("n", i+1),
			Host:               "127.0.0.1",
			Port:               clientPorts[i],
			NoLog:              true,
			NoSigs:             true,
			JetStream:          true,
			StoreDir:           t.TempDir(),
			JetStreamMaxStore:  256 << 20,
			JetStreamMaxMemory: 64 << 20,
			Cluster:            server.ClusterOpts{Name: "sse-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:             server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("server %d: %v", i+1, err)
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(waitLong) {
			t.Fatalf("server %d not ready", i+1)
		}
		cl.servers[opts.ServerName] = s
	}
	waitFor(t, "a JetStream meta leader", func() bool {
		for _, s := range cl.servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return cl
}

func (cl *testCluster) urls() []string {
	var out []string
	for _, s := range cl.servers {
		out = append(out, s.ClientURL())
	}
	return out
}

// kill stops a server the way a crash would look to its clients: its
// connections close.
func (cl *testCluster) kill(name string) {
	s := cl.servers[name]
	s.Shutdown()
	s.WaitForShutdown()
}

// freePorts picks n distinct free loopback ports, holding them all until
// every one is chosen.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}
