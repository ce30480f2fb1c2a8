package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// maxResponseLen bounds one response line read by the client: the status of
// MaxConns connections with their CHILD SAs fits well within it.
const maxResponseLen = 256 << 20

// Client talks to a daemon's control socket.
type Client struct {
	c  net.Conn
	rd *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is `ipsecgw run` running with this --socket?)", path, err)
	}
	return &Client{c: c, rd: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }

// Do sends one request and reads its response. A response with OK false is
// returned as an error as well.
func (cl *Client) Do(ctx context.Context, req Request) (Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = cl.c.SetDeadline(dl)
		defer cl.c.SetDeadline(time.Time{})
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := cl.c.Write(append(b, '\n')); err != nil {
		return Response{}, fmt.Errorf("control request: %w", err)
	}
	line, err := readLine(cl.rd, maxResponseLen)
	if err != nil {
		return Response{}, fmt.Errorf("control response: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("control response: %w", err)
	}
	if !resp.OK {
		if resp.Error == "" {
			resp.Error = "request failed"
		}
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Status asks for the status of every configured connection.
func (cl *Client) Status(ctx context.Context) ([]ConnStatus, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdStatus})
	return resp.Conns, err
}

// StatusAll asks for the status with its global section. A daemon from
// before the global section answers without one: it comes back zero.
func (cl *Client) StatusAll(ctx context.Context) ([]ConnStatus, GlobalStatus, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdStatus})
	var g GlobalStatus
	if resp.Global != nil {
		g = *resp.Global
	}
	return resp.Conns, g, err
}

// Up asks the daemon to initiate a connection.
func (cl *Client) Up(ctx context.Context, name string) error {
	_, err := cl.Do(ctx, Request{Cmd: CmdUp, Name: name})
	return err
}

// Down asks the daemon to close a connection.
func (cl *Client) Down(ctx context.Context, name string) error {
	_, err := cl.Do(ctx, Request{Cmd: CmdDown, Name: name})
	return err
}

// Reset asks the daemon to tear a connection down and initiate it again.
func (cl *Client) Reset(ctx context.Context, name string) error {
	_, err := cl.Do(ctx, Request{Cmd: CmdReset, Name: name})
	return err
}

// Reload asks the daemon to reload its configuration files.
func (cl *Client) Reload(ctx context.Context) (ReloadResult, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdReload})
	if resp.Reload == nil {
		return ReloadResult{}, err
	}
	return *resp.Reload, err
}

// ListSAs asks for the SAs with their lifetimes.
func (cl *Client) ListSAs(ctx context.Context) ([]SAEntry, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdListSAs})
	if err == nil && resp.SAs == nil {
		resp.SAs = []SAEntry{}
	}
	return resp.SAs, err
}

// Stats asks for the daemon's counters.
func (cl *Client) Stats(ctx context.Context) (Stats, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdStats})
	if resp.Stats == nil {
		return Stats{}, err
	}
	return *resp.Stats, err
}

// ExportKeys asks for the current SAs' keys (root only).
func (cl *Client) ExportKeys(ctx context.Context) (KeyExport, error) {
	resp, err := cl.Do(ctx, Request{Cmd: CmdExportKeys})
	if resp.Keys == nil {
		return KeyExport{}, err
	}
	return *resp.Keys, err
}

// Events subscribes to the daemon's events and calls f for each until f
// returns false, ctx ends or the daemon closes the stream. The connection
// serves nothing else afterwards: close it.
func (cl *Client) Events(ctx context.Context, f func(Event) bool) error {
	if _, err := cl.Do(ctx, Request{Cmd: CmdEvents}); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { cl.c.Close() })
	defer stop()
	for {
		line, err := readLine(cl.rd, maxResponseLen)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("events: %w", err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		if resp.Event == nil {
			continue
		}
		if !f(*resp.Event) {
			return nil
		}
	}
}

// readLine reads up to and excluding '\n', failing beyond max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := r.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return out[:len(out)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(out) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
