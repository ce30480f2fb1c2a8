package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Server serves the control protocol on a unix socket.
type Server struct {
	ln      *net.UnixListener
	path    string
	backend Backend
	log     *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen creates the socket at path (and its directory, mode 0750,
// if missing) with mode 0660 and starts serving backend on it. A socket
// file left behind by a daemon that died is replaced; one that a live
// daemon still answers on is an error, so two daemons never share a socket.
func Listen(path string, backend Backend, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another daemon is listening on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
		}
	}
	// Create the socket with no access for group/others, then open it up to
	// 0660 once it exists: there is no window in which it is wider.
	ln, err := listenUnixRestricted(path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	s := &Server{ln: ln, path: path, backend: backend, log: log, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, closes open client connections, waits for their
// handlers and removes the socket file.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (EMFILE): back off instead of
			// spinning.
			s.log.Warn("control socket accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// handle answers requests on one connection, one response line per request
// line, until the client closes it or sends something malformed.
func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), MaxRequestLen)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = Response{Error: "malformed request: " + err.Error()}
			_ = enc.Encode(resp)
			return
		}
		switch req.Cmd {
		case CmdEvents:
			// The connection is the stream's from here on.
			s.stream(c, enc)
			return
		case CmdExportKeys:
			resp = s.exportKeys(c)
		default:
			resp = s.dispatch(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = enc.Encode(Response{Error: "request: " + err.Error()})
	}
}

func (s *Server) dispatch(req Request) Response {
	switch req.Cmd {
	case CmdStatus:
		conns := s.backend.Status()
		if conns == nil {
			conns = []ConnStatus{}
		}
		g := s.backend.Global()
		return Response{OK: true, Conns: conns, Global: &g}
	case CmdUp, CmdDown, CmdReset:
		if req.Name == "" {
			return Response{Error: req.Cmd + ": missing connection name"}
		}
		var err error
		switch req.Cmd {
		case CmdUp:
			err = s.backend.Up(req.Name)
		case CmdDown:
			err = s.backend.Down(req.Name)
		default:
			err = s.backend.Reset(req.Name)
		}
		s.log.Info("control request", "cmd", req.Cmd, "conn", req.Name, "err", errString(err))
		if err != nil {
			return Response{Error: err.Error()}
		}
		return Response{OK: true}
	case CmdReload:
		r, err := s.backend.Reload()
		s.log.Info("control request", "cmd", req.Cmd, "changes", len(r.Changes), "err", errString(err))
		if err != nil {
			return Response{Error: err.Error()}
		}
		if r.Changes == nil {
			r.Changes = []ConnChange{}
		}
		if r.Warnings == nil {
			r.Warnings = []string{}
		}
		return Response{OK: true, Reload: &r}
	case CmdListSAs:
		return Response{OK: true, SAs: s.backend.ListSAs()}
	case CmdStats:
		st := s.backend.Stats()
		if st.Conns == nil {
			st.Conns = []ConnStats{}
		}
		return Response{OK: true, Stats: &st}
	default:
		return Response{Error: fmt.Sprintf("unknown command %q (status, up, down, reset, reload, list-sas, stats, events, export-keys)", req.Cmd)}
	}
}

// stream answers an events request: {"ok":true}, then one line per event
// until the client closes the connection (anything it sends or its EOF
// ends the stream), the event source ends, or the server closes.
func (s *Server) stream(c net.Conn, enc *json.Encoder) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := s.backend.Events(ctx)
	if err := enc.Encode(Response{OK: true}); err != nil {
		return
	}
	go func() {
		// Reading is only to notice the client leaving; Close of the
		// server closes c, which ends this read too.
		var b [1]byte
		_, _ = c.Read(b[:])
		cancel()
	}()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if err := enc.Encode(Response{OK: true, Event: &ev}); err != nil {
				return
			}
		case <-ctx.Done():
			// Drain so that the backend's sender is never left blocked.
			for range events {
			}
			return
		}
	}
}

// exportKeys answers export-keys for a client running as root only: the
// keys decrypt every tunnel.
func (s *Server) exportKeys(c net.Conn) Response {
	uid, pid, err := peerCredOf(c)
	if err != nil {
		return Response{Error: "export-keys: cannot tell who is asking: " + err.Error()}
	}
	if uid != 0 {
		s.log.Warn("export-keys refused: the client is not root", "uid", uid, "pid", pid)
		return Response{Error: fmt.Sprintf("export-keys: only root may export keys (you are uid %d)", uid)}
	}
	k, err := s.backend.ExportKeys()
	if err != nil {
		return Response{Error: "export-keys: " + err.Error()}
	}
	s.log.Warn("SA keys exported to a client: anyone with them can decrypt the tunnels' traffic",
		"uid", uid, "pid", pid, "child_sas", k.ChildSAs, "ike_sas", k.IKESAs)
	if k.Unsupported == nil {
		k.Unsupported = []string{}
	}
	return Response{OK: true, Keys: &k}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
