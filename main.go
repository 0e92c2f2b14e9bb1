// Command roomstream is a horizontally scalable real-time rooms backend:
// Socket.IO v4 clients talk to thin connectors, every event goes through
// Redis Streams, and workers apply room, lock and upload logic.
//
//	roomstream dev         connector + worker in one process (embedded Redis by default)
//	roomstream connector   a connector (WebSocket front)
//	roomstream worker      a worker (consumer group over the inbound streams)
//	roomstream hooks       a webhook deliverer (consumer group over the feed streams)
//	roomstream token       print a signed JWT for a user
//	roomstream deadletters list or requeue dead-lettered events
//	roomstream replay      audit the inbound log: timeline, verify, export, import
//	roomstream rooms       list rooms or show one (as the server API reads them)
//	roomstream users       show a user's sockets and rooms, or disconnect them everywhere
//
// The load generator is a separate program, e2e/bench/cmd/roombench.
//
// Configuration comes from ROOMSTREAM_* environment variables; run
// `roomstream <command> -h` to list them.
package main

import (
	"fmt"
	"os"

	"github.com/roomstream/roomstream/infra/cli"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

var commands []command

func main() {
	commands = []command{
		{"dev", "connector and worker in one process; embedded Redis unless ROOMSTREAM_REDIS_URL is set", cli.Dev},
		{"connector", "run a connector: holds WebSocket connections, appends events to Redis Streams", cli.Connector},
		{"worker", "run a worker: applies room, lock and upload logic from the inbound streams", cli.Worker},
		{"hooks", "deliver the applied-events feed as signed webhooks (ROOMSTREAM_WEBHOOK_URL)", cli.Hooks},
		{"token", "print a signed JWT: token -user ID -name NAME [-ttl 1h]", cli.Token},
		{"deadletters", "list or requeue events that failed too often: deadletters list|requeue", cli.DeadLetters},
		{"replay", "audit the inbound log: replay timeline|verify|export|import|clean", cli.Replay},
		{"rooms", "list rooms or show one: rooms list|show", cli.Rooms},
		{"users", "show a user or disconnect them on every connector: users show|disconnect", cli.Users},
	}
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			if err := c.run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "roomstream %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "roomstream: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "Usage: roomstream <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'roomstream <command> -h' for its flags and environment variables.")
}
