package lake

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Under systemd (deploy/systemd), hqd itself holds no privilege: it asks
// for each run on a socket (hqd-job.socket, Accept=yes), and systemd starts
// one hqd-job@ unit per connection, as a user of its own (DynamicUser=yes)
// with a delegated cgroup. In it, `hqd job-run` (Serve) runs the job as a
// Runner does, sandbox and limits included, with its output going straight
// to hqd's pipes, whose ends travel with the request (SCM_RIGHTS). Closing
// the connection cancels the run, so a daemon that dies leaves none behind.

// Remote runs jobs through the job socket.
type Remote struct {
	Socket string // HQD_JOB_SOCKET
	Bin    string
	Limits Limits
}

// request is what hqd sends for one run, after one byte that carries the
// run's stdout and stderr.
type request struct {
	Bin    string   `json:"bin"`
	Dir    string   `json:"dir"`
	Args   []string `json:"args"`
	Stdin  []byte   `json:"stdin,omitempty"`
	Source []byte   `json:"source,omitempty"`
	Limits Limits   `json:"limits"`
}

// answer is the run's end, one line.
type answer struct {
	ExitCode   *int   `json:"exitCode"`
	Limit      string `json:"limit"`
	Cancelled  bool   `json:"cancelled"`
	DurationMs int64  `json:"durationMs"`
	Isolation  string `json:"isolation"`
	Error      string `json:"error,omitempty"`
}

// Run runs spec in a unit of its own and calls line for every output line.
func (rm *Remote) Run(ctx context.Context, spec Spec, line func(stream, text string)) (Outcome, error) {
	out, _, err := rm.run(ctx, spec, line)
	return out, err
}

// Check runs /bin/true like a job, so a host whose job units cannot run
// is found at start; it answers the units' isolation mode.
func (rm *Remote) Check(dir string) (string, error) {
	probe := *rm
	probe.Bin = "/bin/true"
	probe.Limits.Timeout = 10 * time.Second
	out, iso, err := probe.run(context.Background(), Spec{Dir: dir}, func(string, string) {})
	if err == nil && (out.ExitCode == nil || *out.ExitCode != 0 || out.Limit != "") {
		err = fmt.Errorf("a trial run in a job unit ended with %+v", out)
	}
	return iso, err
}

func (rm *Remote) run(ctx context.Context, spec Spec, line func(stream, text string)) (Outcome, string, error) {
	var iso string
	out, err := readOutput(line, func(stdout, stderr *os.File) (Outcome, error) {
		defer stdout.Close()
		defer stderr.Close()
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: rm.Socket, Net: "unix"})
		if err != nil {
			return Outcome{}, fmt.Errorf("asking for a job unit: %w", err)
		}
		defer conn.Close()
		req, err := json.Marshal(request{Bin: rm.Bin, Dir: spec.Dir, Args: spec.Args, Stdin: spec.Stdin, Source: spec.Source, Limits: rm.Limits})
		if err != nil {
			return Outcome{}, err
		}
		if _, _, err := conn.WriteMsgUnix([]byte{'>'}, unix.UnixRights(int(stdout.Fd()), int(stderr.Fd())), nil); err != nil {
			return Outcome{}, fmt.Errorf("handing the job unit its output: %w", err)
		}
		if _, err := conn.Write(append(req, '\n')); err != nil {
			return Outcome{}, fmt.Errorf("sending the job unit its run: %w", err)
		}
		stdout.Close() // the unit has them now: ours must not hold the pipes open
		stderr.Close()
		// A cancel (or hqd's end) closes our side: the unit kills the run.
		stop := context.AfterFunc(ctx, func() { _ = conn.CloseWrite() })
		defer stop()
		// Bounded: a unit that hangs past its own timeout is given up on.
		_ = conn.SetReadDeadline(time.Now().Add(rm.Limits.Timeout + 30*time.Second))
		b, err := bufio.NewReader(conn).ReadBytes('\n')
		var a answer
		if err == nil {
			err = json.Unmarshal(b, &a)
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("the job unit ended without an answer: %w", err)
		}
		if a.Error != "" {
			return Outcome{}, errors.New(a.Error)
		}
		iso = a.Isolation
		return Outcome{ExitCode: a.ExitCode, Limit: a.Limit, Cancelled: a.Cancelled, Duration: time.Duration(a.DurationMs) * time.Millisecond}, nil
	})
	return out, iso, err
}

// Serve is `hqd job-run`: one run asked for on conn (the connection
// systemd accepted, as fd 0), sandboxed and limited in this unit's own
// delegated cgroup, with self as the job helper's fallback. It answers the
// run's end on conn.
func Serve(conn *os.File, self string) error {
	c, err := net.FileConn(conn)
	conn.Close()
	if err != nil {
		return fmt.Errorf("the job connection: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("the job connection is not a unix socket")
	}
	defer uc.Close()
	reply := func(a answer) error {
		b, _ := json.Marshal(a)
		_, err := uc.Write(append(b, '\n'))
		return err
	}
	oob := make([]byte, unix.CmsgSpace(2*4))
	_, oobn, _, _, err := uc.ReadMsgUnix(make([]byte, 1), oob)
	var files []*os.File
	if err == nil {
		files, err = received(oob[:oobn])
	}
	if err != nil {
		return reply(answer{Error: "the job unit got no output to write to: " + err.Error()})
	}
	stdout, stderr := files[0], files[1]
	br := bufio.NewReader(uc)
	b, err := br.ReadBytes('\n')
	var req request
	if err == nil {
		err = json.Unmarshal(b, &req)
	}
	if err == nil && (!filepath.IsAbs(req.Bin) || !filepath.IsAbs(req.Dir)) {
		err = errors.New("the binary and the project must be absolute paths")
	}
	if err != nil {
		stdout.Close()
		stderr.Close()
		return reply(answer{Error: "the job unit's request: " + err.Error()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, br) // hqd closes its side to cancel, or by ending
		cancel()
	}()
	iso := DetectIsolation(false)
	helper, _ := Helper(self)
	r := &Runner{Bin: req.Bin, Self: helper, Iso: iso, Box: NewSandboxing(req.Bin, nil), Limits: req.Limits}
	out, err := r.RunFiles(ctx, Spec{Dir: req.Dir, Args: req.Args, Stdin: req.Stdin, Source: req.Source}, stdout, stderr)
	a := answer{ExitCode: out.ExitCode, Limit: out.Limit, Cancelled: out.Cancelled, DurationMs: out.Duration.Milliseconds(), Isolation: iso.Mode}
	if err != nil {
		a.Error = err.Error()
		if iso.Mode == IsolationNone {
			a.Error = "no cgroups in the job unit: " + iso.Detail
		}
	}
	return reply(a)
}

// received are the two files passed with the request.
func received(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		fds = append(fds, got...)
	}
	if len(fds) != 2 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("%d descriptors instead of 2", len(fds))
	}
	return []*os.File{os.NewFile(uintptr(fds[0]), "stdout"), os.NewFile(uintptr(fds[1]), "stderr")}, nil
}
