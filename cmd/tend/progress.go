package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar of work measured in bytes, such as a file being
// imported: redrawn in place with a carriage return at most ten times a second, and finished
// with a newline. An off progress draws nothing; it is off unless its writer is a terminal, so a
// pipe or a log file never fills with bars. Written to, as a logger's writer, it puts the text
// above the bar.
type progress struct {
	w     io.Writer
	total int64
	off   bool
	now   func() time.Time
	start time.Time

	mu    sync.Mutex // a logger may write from any goroutine
	last  time.Time
	drawn string // the bar on the screen now; "" when none is
	width int    // of the last line drawn, to blank what a shorter one leaves
}

// progressEvery is how often the bar is redrawn at most.
const progressEvery = 100 * time.Millisecond

func newProgress(w io.Writer, total int64, off bool) *progress {
	p := &progress{w: w, total: total, off: off, now: time.Now}
	p.start = p.now()
	return p
}

// isTerminal tells whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// update redraws the bar when it was not drawn in the last progressEvery: read of total bytes
// done, ok rows imported and bad ones skipped.
func (p *progress) update(read int64, ok, bad int) {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	p.draw(p.line(read, ok, bad, now))
}

// done draws the bar a last time, whole, and ends its line.
func (p *progress) done(read int64, ok, bad int) {
	if p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(p.line(read, ok, bad, p.now()))
	fmt.Fprintln(p.w)
	p.drawn, p.width = "", 0
}

// Write writes b (whole lines, as a logger writes them) above the bar: the bar's line is
// blanked, b written, and the bar drawn again under it. Off, b passes straight through.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn == "" {
		return p.w.Write(b)
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	n, err := p.w.Write(b)
	fmt.Fprintf(p.w, "\r%s", p.drawn)
	return n, err
}

func (p *progress) draw(line string) {
	pad := max(p.width-len(line), 0)
	p.width, p.drawn = len(line), line
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// line is the bar at now: how far, how many rows, how fast, and how long until the end.
func (p *progress) line(read int64, ok, bad int, now time.Time) string {
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(read)/float64(p.total), 1)
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	s := fmt.Sprintf("[%s] %3.0f%%  %d imported, %d skipped", bar, frac*100, ok, bad)
	elapsed := now.Sub(p.start)
	if elapsed < time.Second || ok+bad == 0 {
		return s
	}
	s += fmt.Sprintf("  %.0f rows/s", float64(ok+bad)/elapsed.Seconds())
	if frac > 0 && frac < 1 {
		left := time.Duration(float64(elapsed) * (1 - frac) / frac)
		s += "  " + left.Round(time.Second).String() + " left"
	}
	return s
}
