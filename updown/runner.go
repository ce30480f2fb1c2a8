package updown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// DefaultTimeout bounds one script run when Options.Timeout is 0.
// strongSwan waits for its updown scripts without a limit, in the IKE
// thread; a hung script here only holds up the later scripts of the same
// conn, and not for longer than this.
const DefaultTimeout = 30 * time.Second

// maxOutputLines bounds how many lines of one run's output reach the log,
// so that a chatty script cannot flood it.
const maxOutputLines = 50

// defaultPath is PATH for the scripts when the daemon has none (strongSwan
// passes its own PATH on).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options configure a Runner.
type Options struct {
	// Conn looks up a conn's current configuration when one of its CHILD
	// SAs comes up; a conn it does not know, or one without a Script,
	// runs nothing.
	Conn func(name string) (Conn, bool)
	// Timeout bounds one script run (0: DefaultTimeout); the script's
	// whole process group is killed when it is over.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock of Status.LastRun (nil: time.Now).
	Now func() time.Time
}

// Status is what a conn's scripts did, for `ipsecgw status`.
type Status struct {
	// Runs and Failures count the script runs since the daemon started.
	Runs, Failures uint64
	// LastVerb is PLUTO_VERB of the last run that ended ("up-client" ...).
	LastVerb string
	// LastError says why the last run failed (exit status or timeout,
	// with the last line the script printed); "" when it succeeded.
	LastError string
	LastRun   time.Time
}

// Runner runs the conns' updown scripts for the CHILD SAs that come up and
// go down, from IKE's events (Run). Scripts of one conn run one after the
// other in the order of the events; scripts of different conns run side
// by side. IKE never waits for a script: the events reach the Runner
// through a subscription that queues.
type Runner struct {
	o   Options
	log *slog.Logger

	// Owned by the goroutine in Run.
	children map[uint32]*record // by our inbound SPI
	// active counts the CHILD SAs of a conn that carry one pair of
	// selectors: the up script runs for the first, the down script when
	// the last goes, so a rekey or a make-before-break reauthentication
	// (new CHILD SA up, then the old one down) does not run down after
	// up and leave the routes the script manages removed.
	active     map[activeKey]int
	uniqueIDs  map[ikeKey]uint32
	nextUnique uint32

	mu     sync.Mutex
	status map[string]*Status
	queues map[string]*queue
	wg     sync.WaitGroup
}

// record is a CHILD SA with a script, as it came up.
type record struct {
	conn  Conn
	ike   ike.IKEInfo
	child ike.ChildInfo
}

type activeKey struct {
	conn string
	p    policy
}

type ikeKey struct{ spii, spir uint64 }

type queue struct {
	jobs    []job
	running bool
}

// job is one script run.
type job struct {
	conn, verb, script string
	env                []string
}

// New makes a Runner; Run feeds it.
func New(o Options) *Runner {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runner{
		o: o, log: o.Logger,
		children: map[uint32]*record{}, active: map[activeKey]int{}, uniqueIDs: map[ikeKey]uint32{},
		status: map[string]*Status{}, queues: map[string]*queue{},
	}
}

// Run takes IKE's events until the channel is closed (the Manager closed
// the subscription: the down scripts of its last SAs are queued by then),
// then waits for the scripts still running or queued.
func (r *Runner) Run(events <-chan ike.Event) {
	for ev := range events {
		r.handle(ev)
	}
	r.wg.Wait()
}

// Status returns what the conn's scripts did; ok is false when none ran.
func (r *Runner) Status(conn string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.status[conn]
	if !ok {
		return Status{}, false
	}
	return *s, true
}

// handle turns one event into script runs. strongSwan runs updown for a
// CHILD SA installed (up) or removed (down), not for rekeys.
func (r *Runner) handle(ev ike.Event) {
	switch e := ev.(type) {
	case shared.ChildUp:
		r.up(e.Conn, e.IKE, e.Child)
	case shared.ChildRekeyed:
		// The successor comes up and the old SA goes (its ChildDown,
		// marked Rekeyed, finds nothing left to do); with the same
		// selectors neither runs a script.
		r.up(e.Conn, e.IKE, e.New)
		r.down(e.IKE, e.Old.InSPI)
	case shared.ChildDown:
		r.down(e.IKE, e.Child.InSPI)
	case shared.IKEDown:
		for _, ch := range e.Children {
			r.down(e.IKE, ch.InSPI)
		}
		delete(r.uniqueIDs, ikeKey{e.IKE.SPIi, e.IKE.SPIr})
	case shared.IKERekeyed:
		// The CHILD SAs moved to the new IKE SA (RFC 7296 §2.18).
		for _, rec := range r.children {
			if rec.ike.SPIi == e.Old.SPIi && rec.ike.SPIr == e.Old.SPIr {
				rec.ike = e.New
			}
		}
		delete(r.uniqueIDs, ikeKey{e.Old.SPIi, e.Old.SPIr})
	}
}

func (r *Runner) up(name string, ikeSA ike.IKEInfo, ch ike.ChildInfo) {
	c, ok := r.o.Conn(name)
	if !ok || c.Script == "" {
		return
	}
	c.Name = name
	rec := &record{conn: c, ike: ikeSA, child: ch}
	r.children[ch.InSPI] = rec
	for _, p := range policies(ch) {
		k := activeKey{name, p}
		r.active[k]++
		if r.active[k] == 1 {
			r.enqueue(r.job(true, rec, p))
		}
	}
}

// down runs the down script of the CHILD SA with our inbound SPI inSPI,
// if it ran the up script. ikeSA is the IKE SA the event names, which
// the IKE rekey handling above kept the record's in step with.
func (r *Runner) down(ikeSA ike.IKEInfo, inSPI uint32) {
	rec, ok := r.children[inSPI]
	if !ok {
		return
	}
	delete(r.children, inSPI)
	if ikeSA.SPIi != 0 {
		rec.ike = ikeSA
	}
	for _, p := range policies(rec.child) {
		k := activeKey{rec.conn.Name, p}
		r.active[k]--
		if r.active[k] <= 0 {
			delete(r.active, k)
			r.enqueue(r.job(false, rec, p))
		}
	}
}

func (r *Runner) job(up bool, rec *record, p policy) job {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := environment(up, rec.conn, rec.ike, rec.child, p, rec.child.ReqID, r.uniqueID(rec.ike), path)
	return job{conn: rec.conn.Name, verb: strings.TrimPrefix(env[2], "PLUTO_VERB="), script: rec.conn.Script, env: env}
}

// uniqueID is PLUTO_UNIQUEID: a number per IKE SA, counted from 1 as
// strongSwan's unique IDs are.
func (r *Runner) uniqueID(i ike.IKEInfo) uint32 {
	k := ikeKey{i.SPIi, i.SPIr}
	id, ok := r.uniqueIDs[k]
	if !ok {
		r.nextUnique++
		id = r.nextUnique
		r.uniqueIDs[k] = id
	}
	return id
}

// enqueue adds a run to its conn's queue, starting the conn's worker when
// it is idle.
func (r *Runner) enqueue(j job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[j.conn]
	if q == nil {
		q = &queue{}
		r.queues[j.conn] = q
	}
	q.jobs = append(q.jobs, j)
	if !q.running {
		q.running = true
		r.wg.Add(1)
		go r.work(j.conn, q)
	}
}

// work runs a conn's queued scripts in order until its queue is empty.
func (r *Runner) work(conn string, q *queue) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			delete(r.queues, conn)
			r.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		r.mu.Unlock()
		err := r.exec(j)
		r.record(j, err)
	}
}

func (r *Runner) record(j job, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status[j.conn]
	if s == nil {
		s = &Status{}
		r.status[j.conn] = s
	}
	s.Runs++
	s.LastVerb, s.LastRun, s.LastError = j.verb, r.o.Now(), ""
	if err != nil {
		s.Failures++
		s.LastError = err.Error()
	}
}

// exec runs one script through /bin/sh -c (so leftupdown= may carry
// arguments, as strongSwan allows) with exactly the job's environment,
// logging what it prints; the error says how it failed.
func (r *Runner) exec(j job) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", j.script)
	cmd.Env = j.env
	cmd.Dir = "/"
	// Its own process group, so that the timeout kills what the script
	// started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background child that keeps the output pipe open must not hold
	// the worker beyond the script's own exit.
	cmd.WaitDelay = time.Second
	out := &lineLog{log: r.log, conn: j.conn, verb: j.verb}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	out.flush()
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		err = fmt.Errorf("updown script %s timed out after %s and was killed", j.verb, r.o.Timeout)
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("updown script %s failed: %s", j.verb, exit.ProcessState)
		} else {
			err = fmt.Errorf("updown script %s could not run: %w", j.verb, err)
		}
	}
	if err != nil {
		if out.last != "" {
			err = fmt.Errorf("%w (last output: %q)", err, out.last)
		}
		r.log.Warn("updown script failed", "conn", j.conn, "verb", j.verb, "took", took, "err", err)
		return err
	}
	r.log.Info("updown script ran", "conn", j.conn, "verb", j.verb, "took", took)
	return nil
}

// lineLog logs a script's output line by line (as strongSwan's "updown:"
// lines), at most maxOutputLines, and keeps the last line for the error
// text. exec.Cmd writes to it from one goroutine.
type lineLog struct {
	log        *slog.Logger
	conn, verb string
	buf        []byte
	lines      int
	last       string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 { // a line without end: log what there is
		l.line(string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

func (l *lineLog) flush() {
	if len(l.buf) > 0 {
		l.line(string(l.buf))
		l.buf = nil
	}
}

func (l *lineLog) line(s string) {
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return
	}
	l.last = s
	l.lines++
	switch {
	case l.lines <= maxOutputLines:
		l.log.Info("updown: "+s, "conn", l.conn, "verb", l.verb)
	case l.lines == maxOutputLines+1:
		l.log.Info("updown: further output not logged", "conn", l.conn, "verb", l.verb)
	}
}
