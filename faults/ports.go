package faults

import (
	"fmt"
	"strconv"
)

// portPlan lays every listener of a run out from one base port, on
// 127.0.0.1 only.
//
//	base+0..9     NATS client ports      base+10..19  NATS cluster ports
//	base+20       load balancer          base+21..29  Caddy nodes
//	base+30       load balancer admin    base+31..39  Caddy node admin
//	base+40+10*i+j  proxy from Caddy node i to NATS server j
type portPlan struct{ base int }

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func (p portPlan) natsClient(i int) string  { return addr(p.base + i) }
func (p portPlan) natsCluster(i int) string { return addr(p.base + 10 + i) }
func (p portPlan) lb() string               { return addr(p.base + 20) }
func (p portPlan) node(i int) string        { return addr(p.base + 21 + i) }
func (p portPlan) lbAdmin() string          { return addr(p.base + 30) }
func (p portPlan) nodeAdmin(i int) string   { return addr(p.base + 31 + i) }
func (p portPlan) proxy(node, server int) string {
	return addr(p.base + 40 + 10*node + server)
}

// all lists every port of a run with nodes Caddy nodes and servers NATS
// servers, to check they are free before starting.
func (p portPlan) all(nodes, servers int) []string {
	out := []string{p.lb(), p.lbAdmin()}
	for j := range servers {
		out = append(out, p.natsClient(j), p.natsCluster(j))
	}
	for i := range nodes {
		out = append(out, p.node(i), p.nodeAdmin(i))
		for j := range servers {
			out = append(out, p.proxy(i, j))
		}
	}
	return out
}

func (p portPlan) check(nodes, servers int) error {
	for _, a := range p.all(nodes, servers) {
		if !portFree(a) {
			return fmt.Errorf("%s is in use; choose another -port-base", a)
		}
	}
	return nil
}
