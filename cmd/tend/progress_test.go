package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a progress's time, moved by the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testProgress(total int64, off bool) (*progress, *bytes.Buffer, *clock) {
	var out bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	p := newProgress(&out, total, off)
	p.now, p.start = c.now, c.t
	return p, &out, c
}

// The bar redraws in place, at most ten times a second, tells how far, how fast and how long is
// left, and ends with a newline.
func TestProgressDrawsInPlace(t *testing.T) {
	t.Parallel()
	p, out, c := testProgress(1000, false)
	p.update(0, 0, 0)
	assert.Equal(t, "\r[>                             ]   0%  0 imported, 0 skipped", out.String())

	out.Reset()
	c.t = c.t.Add(50 * time.Millisecond)
	p.update(100, 10, 0)
	assert.Empty(t, out.String(), "not again within 100ms")

	c.t = c.t.Add(1950 * time.Millisecond) // 2s in
	p.update(250, 40, 10)
	assert.Equal(t, "\r[=======>                      ]  25%  40 imported, 10 skipped  25 rows/s  6s left", out.String())

	out.Reset()
	c.t = c.t.Add(2 * time.Second)
	p.done(1000, 180, 20)
	assert.Equal(t, "\r[==============================] 100%  180 imported, 20 skipped  50 rows/s        \n", out.String(),
		"the last line, whole, padded over the longer one before it, then a newline")
}

func TestProgressPadsOverALongerLine(t *testing.T) {
	t.Parallel()
	p, out, _ := testProgress(10, false)
	p.draw("a long line")
	out.Reset()
	p.draw("short")
	assert.Equal(t, "\rshort      ", out.String())
}

// What is written through it, such as a warning of the logger, goes above the bar, never on its
// line; the bar is drawn again under it.
func TestProgressKeepsLogLinesOffTheBar(t *testing.T) {
	t.Parallel()
	p, out, _ := testProgress(100, false)
	_, err := p.Write([]byte("before any bar\n"))
	require.NoError(t, err)
	assert.Equal(t, "before any bar\n", out.String())

	out.Reset()
	p.update(50, 5, 0)
	bar := "[===============>              ]  50%  5 imported, 0 skipped"
	require.Equal(t, "\r"+bar, out.String())
	out.Reset()
	_, err = p.Write([]byte("level=WARN msg=\"enrolment deferred\"\n"))
	require.NoError(t, err)
	assert.Equal(t, "\r"+strings.Repeat(" ", len(bar))+"\r"+"level=WARN msg=\"enrolment deferred\"\n"+"\r"+bar, out.String())

	out.Reset()
	p.done(100, 10, 0)
	_, err = p.Write([]byte("after\n"))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out.String(), "\nafter\n"), "after done, text is written as it is: %q", out.String())
}

// Off, as on a pipe, a file or with --quiet, it draws nothing at all.
func TestProgressOffDrawsNothing(t *testing.T) {
	t.Parallel()
	p, out, c := testProgress(1000, true)
	p.update(10, 1, 0)
	c.t = c.t.Add(time.Second)
	p.update(500, 50, 0)
	p.done(1000, 100, 0)
	assert.Empty(t, out.String())
	_, err := p.Write([]byte("a warning\n"))
	require.NoError(t, err)
	assert.Equal(t, "a warning\n", out.String(), "what is written passes through")
}

// A pipe and a buffer are not terminals; a pseudo-terminal is.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, isTerminal(w))
	assert.False(t, isTerminal(&bytes.Buffer{}))

	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	assert.True(t, isTerminal(pty))
}
