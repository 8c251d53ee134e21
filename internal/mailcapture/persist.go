package mailcapture

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// stored is one message on disk when Options.Dir is set, so the inbox of `tend dev` survives a
// restart like the rest of its state.
type stored struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Received time.Time `json:"received"`
	Raw      []byte    `json:"raw"`
}

func (s *Server) path(id string) string { return filepath.Join(s.opts.Dir, id+".json") }

// load reads the messages kept in Options.Dir, oldest first.
func (s *Server) load() {
	if s.opts.Dir == "" {
		return
	}
	if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
		s.log.Warn("mailcapture: cannot create message directory", "err", err)
		return
	}
	files, _ := filepath.Glob(filepath.Join(s.opts.Dir, "*.json"))
	var msgs []Message
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var st stored
		if err := json.Unmarshal(b, &st); err != nil {
			s.log.Warn("mailcapture: skipping unreadable stored message", "file", filepath.Base(f))
			continue
		}
		m := parse(st.Raw, s.log)
		m.ID, m.From, m.To, m.Raw, m.Received = st.ID, st.From, st.To, st.Raw, st.Received
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return idNum(msgs[i].ID) < idNum(msgs[j].ID) })
	if over := len(msgs) - s.opts.MaxMessages; over > 0 {
		for _, m := range msgs[:over] {
			_ = os.Remove(s.path(m.ID))
		}
		msgs = msgs[over:]
	}
	s.msgs = msgs
	for _, m := range msgs {
		if n := idNum(m.ID); n > s.lastID {
			s.lastID = n
		}
	}
}

func (s *Server) save(m Message) {
	if s.opts.Dir == "" {
		return
	}
	b, err := json.Marshal(stored{ID: m.ID, From: m.From, To: m.To, Received: m.Received, Raw: m.Raw})
	if err == nil {
		err = os.WriteFile(s.path(m.ID), b, 0o600)
	}
	if err != nil {
		s.log.Warn("mailcapture: cannot keep message on disk", "id", m.ID, "err", err)
	}
}

func (s *Server) forget(ids []string) {
	if s.opts.Dir == "" {
		return
	}
	for _, id := range ids {
		_ = os.Remove(s.path(id))
	}
}

func idNum(id string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(id), 10, 64)
	return n
}
