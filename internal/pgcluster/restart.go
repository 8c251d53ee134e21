package pgcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Restart restarts the server the way an operator does (`pg_ctl restart -m fast`): open sessions
// are disconnected, the server shuts down cleanly and comes back on the same port with the same
// settings, and Restart returns once it accepts connections again. Clients see their connections
// drop and must reconnect, which is what the chaos test (e2e/chaos) exercises. It must not run
// concurrently with Stop.
func (c *Cluster) Restart(ctx context.Context) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create log pipe: %w", err)
	}
	logTail := &tailBuffer{max: 8 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		io.Copy(io.MultiWriter(logTail, c.log), r)
	}()
	// Without -o, pg_ctl starts the new server with the options of the previous one
	// (postmaster.opts): same port, socket directory and durability settings.
	cmd := c.command(ctx, c.bins.pgCtl, "restart", "-w", "-t", "60", "-m", "fast", "-D", c.dir)
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Run()
	w.Close()
	if err != nil {
		<-done
		return fmt.Errorf("restart PostgreSQL in %s on port %s: %w\n%s", c.dir, strconv.Itoa(c.port), err, logTail.String())
	}
	// The old server's log pipe closed when it exited; the new server writes to this one.
	c.logDone = done
	return nil
}
