package main

import (
	"fmt"
	"time"
)

// benchQuick are the sizes of `tend bench --quick`: every measurement runs, small enough that the
// whole bench finishes in a couple of minutes on 2 cores. A flag given explicitly still wins.
var benchQuick = map[string]func(o *benchOptions){
	"leads":          func(o *benchOptions) { o.leads = 100 },
	"events":         func(o *benchOptions) { o.events = 5 },
	"sample":         func(o *benchOptions) { o.sample = 10 },
	"timeout":        func(o *benchOptions) { o.timeout = 2 * time.Minute },
	"step-wait":      func(o *benchOptions) { o.stepWait = 10 * time.Second },
	"hand-raises":    func(o *benchOptions) { o.handRaises = 100 },
	"lapses":         func(o *benchOptions) { o.lapses = 100 },
	"sla":            func(o *benchOptions) { o.sla = 30 * time.Second },
	"track-duration": func(o *benchOptions) { o.trackFor = 3 * time.Second },
}

// benchMaxAddresses bounds the tracking load's source addresses: each keeps a connection or two
// open, on both ends when tend runs in this process, within the usual limit of open files.
const benchMaxAddresses = 4000

// applyQuick sets the quick sizes of every flag that was not given (set reports whether it was).
func (o *benchOptions) applyQuick(set func(flag string) bool) {
	for name, apply := range benchQuick {
		if !set(name) {
			apply(o)
		}
	}
}

// validate refuses sizes that cannot measure anything.
func (o *benchOptions) validate() error {
	switch {
	case o.leads < 1 || o.concurrency < 1 || o.batch < 1:
		return fmt.Errorf("%w: --leads, --concurrency and --batch must be at least 1", errUsage)
	case o.events < 0 || o.sample < 0 || o.ceiling < 0 || o.handRaises < 0 || o.lapses < 0:
		return fmt.Errorf("%w: --events, --sample, --ceiling, --hand-raises and --lapses must be at least 0", errUsage)
	case o.handRaises > 0 && o.handRaiseRate <= 0:
		return fmt.Errorf("%w: --hand-raise-rate must be above 0", errUsage)
	case o.stepWait < time.Second:
		return fmt.Errorf("%w: --step-wait must be at least 1s, so the second email comes after the first", errUsage)
	case o.lapses > 0 && o.sla < 10*time.Second:
		return fmt.Errorf("%w: --sla must be at least 10s: the reminder comes 5s before the deadline", errUsage)
	case o.trackFor < 0 || o.trackConcurrency < 1 || o.trackAddresses < 1 || o.trackAddresses > benchMaxAddresses:
		return fmt.Errorf("%w: --track-duration must be at least 0, --track-concurrency at least 1, --track-addresses between 1 and %d", errUsage,
			benchMaxAddresses)
	}
	return nil
}

// describe names the sizes the run used, for the result file.
func (o *benchOptions) describe() map[string]any {
	return map[string]any{
		"leads": o.leads, "concurrency": o.concurrency, "events": o.events, "batch": o.batch, "sample": o.sample,
		"timeout": o.timeout.String(), "quick": o.quick, "step_wait": o.stepWait.String(), "ceiling": o.ceilingRuns(),
		"hand_raises": o.handRaises, "hand_raise_rate": o.handRaiseRate, "lapses": o.lapses, "sla": o.sla.String(),
		"track_duration": o.trackFor.String(), "track_concurrency": o.trackConcurrency, "track_addresses": o.trackAddresses,
	}
}

// ceilingRuns is how many bare workflows measure the ceiling: as many as leads unless told.
func (o *benchOptions) ceilingRuns() int {
	if o.ceiling > 0 {
		return o.ceiling
	}
	return o.leads
}
