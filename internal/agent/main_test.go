//go:build unix

package agent

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// roleEnv makes the test binary act as something else when re-executed: the
// app the agent supervises ("app") or the agent itself ("agent").
const roleEnv = "DEVCTL_AGENT_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "app":
		os.Exit(fakeApp(os.Args[1:]))
	case "agent":
		// The app the agent starts inherits its environment.
		_ = os.Setenv(roleEnv, "app")
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// fakeApp is a small server whose behaviour the arguments script:
//
//	listen=PORT     serve HTTP on 127.0.0.1:PORT, answering body=... (or "ok")
//	body=TEXT       what it answers
//	print=TEXT      a line on stdout; eprint=TEXT on stderr
//	print-env=NAME  prints "env NAME=value"
//	exit=N          exit with N right away (after the prints)
//	term-exit=N     exit with N on SIGTERM or SIGINT (default: die by the signal)
//	ignore-term     ignore SIGTERM
//	orphan          leave a grandchild behind (it prints "orphan PID", sleeps
//	                200ms and exits) and keep running
//	sleep=DURATION  sleep, then exit 0
func fakeApp(args []string) int {
	kv := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		kv[k] = v
	}
	if _, ok := kv["orphan-child"]; ok {
		fmt.Printf("orphan %d\n", os.Getpid())
		time.Sleep(200 * time.Millisecond)
		return 0
	}
	if _, ok := kv["orphan-middle"]; ok {
		c := exec.Command(os.Args[0], "orphan-child")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0 // without waiting: the child is orphaned
	}
	if v, ok := kv["print"]; ok {
		fmt.Println(v)
	}
	if v, ok := kv["print-env"]; ok {
		fmt.Printf("env %s=%s\n", v, os.Getenv(v))
	}
	if v, ok := kv["eprint"]; ok {
		fmt.Fprintln(os.Stderr, v)
	}
	if v, ok := kv["exit"]; ok {
		n, _ := strconv.Atoi(v)
		return n
	}
	if v, ok := kv["sleep"]; ok {
		d, _ := time.ParseDuration(v)
		time.Sleep(d)
		return 0
	}
	if _, ok := kv["orphan"]; ok {
		c := exec.Command(os.Args[0], "orphan-middle")
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	sigs := make(chan os.Signal, 4)
	if _, ok := kv["ignore-term"]; ok {
		signal.Ignore(syscall.SIGTERM)
	}
	if v, ok := kv["term-exit"]; ok {
		n, _ := strconv.Atoi(v)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sigs
			os.Exit(n)
		}()
	}
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGHUP)
	go func() {
		for s := range usr {
			fmt.Printf("got %s\n", s)
		}
	}()
	if port, ok := kv["listen"]; ok {
		body := kv["body"]
		if body == "" {
			body = "ok"
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("listening on %s\n", ln.Addr())
		srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, body)
		})}
		_ = srv.Serve(ln)
		return 0
	}
	select {}
}

// testExe is the test binary, which acts as the app with roleEnv=app.
func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// appEnv is the environment of a fake app.
func appEnv() []string { return append(os.Environ(), roleEnv+"=app") }

// freePort returns a port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it holds or a generous deadline passes. It
// waits for something to happen; it does not measure how fast.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
