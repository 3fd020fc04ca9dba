// Command sse-faults runs the fault suite (package faults): a 3-node NATS
// cluster, Caddy nodes with the sse module behind a Caddy load balancer, a
// publisher and recording SSE clients, all on loopback, with faults injected
// one at a time and mixed. faults/run.sh builds the binaries and runs it.
//
//	sse-faults -caddy BIN -nats-server BIN [-faults short|all|a,b,c+d] [-seed N] [-duration D]
//
// Exit status: 0 pass, 3 a promise was broken (see the table), 1 the run
// failed, 2 usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caddy-sse/caddy-sse/faults"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := faults.Config{}
	fs := flag.NewFlagSet("sse-faults", flag.ContinueOnError)
	fs.StringVar(&cfg.CaddyBin, "caddy", "", "Caddy binary with the sse module (go build ./cmd/caddy)")
	fs.StringVar(&cfg.NATSBin, "nats-server", "", "nats-server binary")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for logs and stores (default: a new temporary one)")
	fs.IntVar(&cfg.PortBase, "port-base", 24200, "first of the loopback ports the run uses (it takes the next 60-130, by -nodes)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of every random choice (node, durations, fault order)")
	fs.StringVar(&cfg.Faults, "faults", "short", "comma-separated faults, run in this order, then three at once (-mixed); a+b runs a and b at once; short: the short form's; all: every fault")
	fs.BoolVar(&cfg.Mixed, "mixed", true, "after the single faults, run three of them at once")
	fs.DurationVar(&cfg.Duration, "duration", 0, "long form: after the list, keep injecting random faults until this much time has passed")
	fs.IntVar(&cfg.Clients, "clients", 200, "SSE clients through the load balancer (plus one probe per node)")
	fs.IntVar(&cfg.KVClients, "kv-clients", 20, "clients of the KV-style stream (/kv), through the load balancer")
	fs.Float64Var(&cfg.Rate, "rate", 100, "events per second, round-robin over four subjects")
	fs.IntVar(&cfg.Nodes, "nodes", 2, "Caddy nodes")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "quiet time after each fault, once every node is live again")
	timeout := fs.Duration("timeout", 0, "hard limit for the whole run, everything is stopped then (default: -duration plus 15m)")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	mdOut := fs.String("md", "", "also write the Markdown table to this file")
	listOnly := fs.Bool("list", false, "list the faults and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if *listOnly {
		for _, f := range faults.Catalogue() {
			fmt.Printf("%-24s %-6s %s\n", f.Name, f.Form, f.What)
		}
		return 0
	}
	if cfg.CaddyBin == "" || cfg.NATSBin == "" || cfg.Clients < 1 || cfg.Nodes < 1 || cfg.Nodes > 9 || cfg.Rate <= 0 {
		fmt.Fprintln(os.Stderr, "sse-faults: -caddy and -nats-server are required; -clients, -nodes (1-9) and -rate must be positive")
		return 2
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "sse-faults-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "sse-faults:", err)
			return 1
		}
		cfg.Dir = d
	}
	cfg.Log = log.New(os.Stderr, "sse-faults: ", log.Ltime|log.Lmicroseconds)

	if *timeout <= 0 {
		*timeout = cfg.Duration + 15*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Whatever hangs, the process ends shortly after the limit; its children
	// get SIGKILL with it (parent-death signal).
	go func() {
		<-ctx.Done()
		time.Sleep(30 * time.Second)
		cfg.Log.Print("cleanup did not finish in 30 s; exiting")
		os.Exit(1)
	}()

	cfg.Log.Printf("logs and stores in %s", cfg.Dir)
	res, err := faults.Run(ctx, cfg)
	if err != nil {
		cfg.Log.Printf("run failed: %v (logs in %s)", err, cfg.Dir)
		return 1
	}
	md := res.Markdown("")
	fmt.Print(md)
	for _, s := range res.Samples {
		fmt.Println("  " + s)
	}
	if res.Diagnosis != "" {
		fmt.Println("  timelines of the clients with violations: " + res.Diagnosis)
	}
	for _, f := range res.Failures {
		fmt.Println("  fault not applied: " + f)
	}
	if *mdOut != "" {
		_ = os.WriteFile(*mdOut, []byte(md), 0o644)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		_ = os.WriteFile(*jsonOut, b, 0o644)
	}
	if !res.OK() {
		return 3
	}
	return 0
}
