package control

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"
)

// FuzzControlRequest feeds arbitrary bytes to a control connection: the
// server answers every complete line with one JSON response (or hangs up
// after a malformed one) and never panics.
//
//	go test ./daemon -run '^$' -fuzz FuzzControlRequest -fuzztime 20s
func FuzzControlRequest(f *testing.F) {
	for _, seed := range []string{
		`{"cmd":"status"}` + "\n",
		`{"cmd":"up","name":"net-net"}` + "\n" + `{"cmd":"down","name":"net-net"}` + "\n",
		`{"cmd":"up"}` + "\n",
		`{"cmd":7}` + "\n",
		"not json\n",
		`{"cmd":"status","name":"\u0000"}` + "\n",
		"\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{backend: &fakeBackend{conns: sampleStatus()}, log: slog.New(slog.DiscardHandler), conns: map[net.Conn]struct{}{}}
		client, server := net.Pipe()
		defer client.Close()
		s.wg.Add(1)
		go s.handle(server)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			client.Write(in)
			// Close the writing side by ending the line stream: net.Pipe
			// has no half-close, so a final newline ends any partial line.
			client.Write([]byte("\n"))
		}()
		rd := bufio.NewReader(client)
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				break
			}
			var resp Response
			if err := json.Unmarshal(line, &resp); err != nil {
				t.Fatalf("response is not JSON: %q", line)
			}
			if !resp.OK && resp.Error == "" {
				t.Fatalf("failed response without an error: %q", line)
			}
			if rd.Buffered() == 0 {
				// Give the server a moment for a next answer; the deadline
				// ends the loop when none comes.
				client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			}
		}
		client.Close()
		s.wg.Wait()
	})
}
