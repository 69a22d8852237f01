package agent

import (
	"errors"
	"fmt"
	"time"
)

// The agent's HTTP API. Every /v1 path needs the header
// "Authorization: Bearer <token>".
const (
	// PathStatus answers GET with a [Status].
	PathStatus = "/v1/status"
	// PathSync takes POST multipart/form-data: a "manifest" part (JSON
	// [Manifest]) and then one "file" part per write in manifest order,
	// each exactly FileOp.Size bytes. It answers with a [Result] once the
	// action is done.
	PathSync = "/v1/sync"
	// PathLogs answers GET with the app's recent output as NDJSON
	// [LogLine]s: ?tail=N lines of backlog (default 100, -1 all kept),
	// ?follow=1 keeps streaming.
	PathLogs = "/v1/logs"
	// PathHealth answers GET with 200 while the agent runs; no token. The
	// chart points the liveness probe at it in live mode, so a broken save
	// does not get the container restarted under the developer.
	PathHealth = "/healthz"
)

const (
	// TokenEnv is the environment variable holding the shared token. The
	// agent removes it from the app's environment.
	TokenEnv = "DEVCTL_AGENT_TOKEN"
	// DefaultPort is the port the agent's API listens on.
	DefaultPort = 7071

	manifestPart = "manifest"
	filePart     = "file"
)

// Sentinel errors. The client returns them wrapped with the agent's message.
var (
	// ErrUnauthorized means the token was missing or wrong.
	ErrUnauthorized = errors.New("agent refused the token: pass the token from the pod's " + TokenEnv + " (the live.token chart value)")
	// ErrPathNotAllowed means a path is outside the synced directories and
	// is not the entrypoint.
	ErrPathNotAllowed = errors.New("path is not synced: add its directory to live.syncs in the chart values")
	// ErrBadRequest means the agent could not read the request.
	ErrBadRequest = errors.New("bad sync request")
	// ErrStartFailed means the app exited before it listened on its port.
	ErrStartFailed = errors.New("app failed to start")
	// ErrStartTimeout means the app did not listen on its port in time.
	ErrStartTimeout = errors.New("app did not listen in time")
	// ErrRunFailed means a run action exited non-zero or could not start.
	ErrRunFailed = errors.New("run action failed")
)

// Error codes in an error response, mapped back to the sentinels.
const (
	codeUnauthorized   = "unauthorized"
	codePathNotAllowed = "path-not-allowed"
	codeBadRequest     = "bad-request"
	codeInternal       = "internal"
)

// Manifest is the first part of a sync request.
type Manifest struct {
	// Generation numbers the batch; the agent reports the last one applied.
	// 0 means one more than the last.
	Generation uint64 `json:"generation,omitempty"`
	// Files are applied in order, after every write has been received.
	Files  []FileOp `json:"files"`
	Action Action   `json:"action"`
}

// FileOp is one file of a batch.
type FileOp struct {
	// Path is the absolute path in the container: inside a synced
	// directory, or the entrypoint binary.
	Path string `json:"path"`
	// Mode holds the permission bits (0o755); 0 means 0o644.
	Mode uint32 `json:"mode,omitempty"`
	// Size is the length of the file's part.
	Size int64 `json:"size"`
	// Delete removes Path (recursively); it has no part. Deleting the
	// entrypoint returns to the image's original binary.
	Delete bool `json:"delete,omitempty"`
}

// Action is what the agent does after the files are in place. The zero
// value does nothing (a static file needs no restart).
type Action struct {
	// Run is executed directly (no shell) before any restart, with the
	// app's environment and working directory; a non-zero exit stops there.
	Run []string `json:"run,omitempty"`
	// Restart stops the app (SIGTERM to its process group, SIGKILL after
	// the grace period), starts it again and waits until it listens.
	Restart bool `json:"restart,omitempty"`
}

// Result is the answer to a sync.
type Result struct {
	Generation uint64 `json:"generation"`
	Written    int    `json:"written"`
	Deleted    int    `json:"deleted"`
	// Bytes is the size of the files written.
	Bytes   int64      `json:"bytes"`
	Timings Timings    `json:"timings"`
	Run     *RunResult `json:"run,omitempty"`
	// Failure is set when the files were applied but the action failed.
	Failure *Failure  `json:"failure,omitempty"`
	App     AppStatus `json:"app"`
}

// Timings break a sync down, in nanoseconds on the wire.
type Timings struct {
	// Write is from the first byte of the request until every file is
	// renamed into place (receive, write, fsync, rename).
	Write time.Duration `json:"write"`
	// Run is the run action.
	Run time.Duration `json:"run,omitempty"`
	// Stop is from SIGTERM until the old process exited.
	Stop time.Duration `json:"stop,omitempty"`
	// Start is from starting the new process until it listened.
	Start time.Duration `json:"start,omitempty"`
	// Total is the whole request, as the agent saw it.
	Total time.Duration `json:"total"`
}

// RunResult is the outcome of a run action.
type RunResult struct {
	Argv     []string `json:"argv"`
	ExitCode int      `json:"exitCode"`
	// Output holds the command's last output lines (stdout and stderr).
	Output []string `json:"output,omitempty"`
}

// Failure reasons.
const (
	ReasonExited  = "exited"
	ReasonTimeout = "timeout"
	ReasonRun     = "run-failed"
)

// Failure says why an action failed.
type Failure struct {
	// Reason is ReasonExited, ReasonTimeout or ReasonRun.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Logs are the app's (or the run command's) last output lines.
	Logs []string `json:"logs,omitempty"`
}

// ActionError is returned by the client when the files were applied but the
// action failed. It matches ErrStartFailed, ErrStartTimeout or ErrRunFailed
// with errors.Is.
type ActionError struct {
	Failure Failure
}

func (e *ActionError) Error() string {
	msg := e.Failure.Message
	for _, l := range e.Failure.Logs {
		msg += "\n  " + l
	}
	return msg
}

// Is matches the sentinel of the failure's reason.
func (e *ActionError) Is(target error) bool {
	switch e.Failure.Reason {
	case ReasonExited:
		return target == ErrStartFailed
	case ReasonTimeout:
		return target == ErrStartTimeout
	case ReasonRun:
		return target == ErrRunFailed
	}
	return false
}

// Status is the agent's state.
type Status struct {
	Version string `json:"version"`
	// Generation is the last batch applied (0: none since the pod started).
	Generation uint64    `json:"generation"`
	App        AppStatus `json:"app"`
}

// App states.
const (
	StateRunning = "running"
	StateBackoff = "backoff" // exited on its own; started again after a delay
	StateStopped = "stopped" // the agent is stopping, or the app exited with --on-exit=exit
)

// AppStatus describes the supervised app.
type AppStatus struct {
	State string `json:"state"`
	PID   int    `json:"pid,omitempty"`
	// Command is the app's argv; Executable is the file actually run (the
	// synced entrypoint when there is one).
	Command    []string  `json:"command"`
	Executable string    `json:"executable,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	// Listening reports whether 127.0.0.1:Port accepts connections now.
	Listening bool `json:"listening"`
	Port      int  `json:"port,omitempty"`
	// Restarts counts every start after the first.
	Restarts int   `json:"restarts"`
	LastExit *Exit `json:"lastExit,omitempty"`
	// Reaped counts orphaned processes the agent reaped as PID 1.
	Reaped int `json:"reaped,omitempty"`
}

// Exit is how a process ended.
type Exit struct {
	// Code is the exit status, or 128+signal when a signal killed it.
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

func (e Exit) String() string {
	if e.Signal != "" {
		return fmt.Sprintf("killed by %s", e.Signal)
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// LogLine is one line of the app's output.
type LogLine struct {
	Seq    uint64    `json:"seq"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Time   time.Time `json:"time"`
	Text   string    `json:"text"`
}

// errorBody is the JSON of an error response.
type errorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}
