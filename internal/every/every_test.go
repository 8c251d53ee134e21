package every

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gate is a gate the test opens and closes by hand.
type gate struct {
	mu   sync.Mutex
	term context.Context
	end  context.CancelFunc
}

func (g *gate) Leading() (context.Context, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.term, g.term != nil
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.term, g.end = context.WithCancel(context.Background())
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.end()
	g.term = nil
}

const tick = 10 * time.Millisecond

func TestTickWithoutAGateRunsEveryTick(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() { Tick(ctx, tick, func(context.Context) { n.Add(1) }); close(done) }()
	require.Eventually(t, func() bool { return n.Load() >= 3 }, 5*time.Second, tick)
	cancel()
	<-done
}

// Work under a gate runs only while it is open, and a call in progress is cancelled when it
// closes.
func TestTickUnderAGateRunsOnlyWhileItIsOpen(t *testing.T) {
	g := &gate{}
	ctx, cancel := context.WithCancel(WithGate(context.Background(), g))
	defer cancel()
	var calls atomic.Int32
	running := make(chan context.Context, 1)
	go Tick(ctx, tick, func(ctx context.Context) {
		calls.Add(1)
		select {
		case running <- ctx:
			<-ctx.Done() // hold on until the gate closes
		default:
		}
	})

	time.Sleep(10 * tick)
	assert.Zero(t, calls.Load(), "nothing runs while the gate is closed")

	g.open()
	var work context.Context
	select {
	case work = <-running:
	case <-time.After(5 * time.Second):
		t.Fatal("the work did not run once the gate opened")
	}
	assert.NoError(t, work.Err())
	g.close()
	select {
	case <-work.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the work's context was not cancelled when the gate closed")
	}
	time.Sleep(3 * tick) // let a tick that was already past the gate finish
	before := calls.Load()
	time.Sleep(10 * tick)
	assert.Equal(t, before, calls.Load(), "nothing runs once the gate is closed again")
}
