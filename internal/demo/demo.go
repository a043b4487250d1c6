// Package demo is the small upstream service the quick start's connectors
// talk to (`warden serve --demo`): an in-memory notes API and a fake
// payments API. It exists so that a newcomer sees real governed HTTP calls
// without setting anything else up. Not for production use.
package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
)

// Note is one note.
type Note struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Folder string `json:"folder"`
	Text   string `json:"text,omitempty"`
}

// Service is the demo upstream.
type Service struct {
	mu    sync.Mutex
	next  int
	notes map[string]Note
}

// New returns a service holding one welcome note.
func New() *Service {
	s := &Service{notes: map[string]Note{}}
	s.add(Note{Title: "welcome", Folder: "inbox", Text: "This note lives in warden's demo upstream."})
	return s
}

func (s *Service) add(n Note) Note {
	s.next++
	n.ID = strconv.Itoa(s.next)
	s.notes[n.ID] = n
	return n
}

// Handler serves the demo API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		list := make([]Note, 0, len(s.notes))
		for _, n := range s.notes {
			list = append(list, n)
		}
		s.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		reply(w, http.StatusOK, map[string]any{"notes": list})
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		var n Note
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&n); err != nil || n.Title == "" {
			reply(w, http.StatusBadRequest, map[string]string{"error": "a note needs a title"})
			return
		}
		s.mu.Lock()
		n = s.add(n)
		s.mu.Unlock()
		reply(w, http.StatusCreated, n)
	})
	mux.HandleFunc("GET /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n, ok := s.notes[r.PathValue("id")]
		s.mu.Unlock()
		if !ok {
			reply(w, http.StatusNotFound, map[string]string{"error": "no such note"})
			return
		}
		reply(w, http.StatusOK, n)
	})
	mux.HandleFunc("DELETE /notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		_, ok := s.notes[r.PathValue("id")]
		delete(s.notes, r.PathValue("id"))
		s.mu.Unlock()
		if !ok {
			reply(w, http.StatusNotFound, map[string]string{"error": "no such note"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	pay := func(kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
				reply(w, http.StatusBadRequest, map[string]string{"error": "expected a JSON object"})
				return
			}
			s.mu.Lock()
			s.next++
			id := fmt.Sprintf("%s_%d", kind, s.next)
			s.mu.Unlock()
			body["id"], body["status"] = id, "done"
			reply(w, http.StatusCreated, body)
		}
	}
	mux.HandleFunc("POST /payments/refunds", pay("re"))
	mux.HandleFunc("POST /payments/payouts", pay("po"))
	return mux
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
