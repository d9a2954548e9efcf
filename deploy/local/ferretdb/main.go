// Command ferretdb-embedded runs FerretDB v1 (a MongoDB wire-protocol server)
// on 127.0.0.1 for changetrail's tests and quickstart.
//
// It imports FerretDB's embeddable package instead of building FerretDB's own
// command, because `go install .../cmd/ferretdb@v1.24.2` produces a binary
// that panics at start (its version.txt is generated and not in the module).
// The embedded mode has no telemetry and no authentication.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("listen-addr", "127.0.0.1:27017", "TCP listen address (loopback only)")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URL; must exist and end with /")
	pgURL := flag.String("postgresql-url", "postgres://127.0.0.1:5432/ferretdb", "PostgreSQL URL")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	if !strings.HasPrefix(*addr, "127.") && !strings.HasPrefix(*addr, "localhost:") && !strings.HasPrefix(*addr, "[::1]") {
		log.Fatalf("refusing to listen on %q: this server is for loopback use only", *addr)
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		log.Fatalf("bad -log-level %q: %v", *level, err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *addr},
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *pgURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()

	// New() has bound the socket already; Run() accepts connections.
	fmt.Println("READY", f.MongoDBURI())
	<-done
}
