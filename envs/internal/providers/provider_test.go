package providers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCommandErrorMessage(t *testing.T) {
	t.Parallel()
	exit := errors.New("exit status 1")
	numbered := func(from, to int) []string {
		var lines []string
		for i := from; i <= to; i++ {
			lines = append(lines, fmt.Sprintf("line %d", i))
		}
		return lines
	}
	kubeadm := "[init] Using Kubernetes version: v1.35.0\n" + strings.Join(numbered(1, 30), "\n") +
		"\nerror execution phase wait-control-plane: couldn't initialize a Kubernetes cluster\n"
	tests := []struct {
		name   string
		output string
		want   string
	}{
		{name: "no output", output: "", want: "exit status 1"},
		{name: "only blanks", output: " \n\t\n", want: "exit status 1"},
		{
			name:   "short output",
			output: "Error response from daemon: conflict\n",
			want:   "exit status 1; docker run printed (last lines):\n  Error response from daemon: conflict",
		},
		{
			name:   "exactly eight lines",
			output: strings.Join(numbered(1, 8), "\n"),
			want:   "exit status 1; docker run printed (last lines):\n  " + strings.Join(numbered(1, 8), "\n  "),
		},
		{
			name:   "long output ends with the reason",
			output: kubeadm,
			want: "exit status 1; docker run printed (last lines):\n  " + strings.Join(numbered(24, 30), "\n  ") +
				"\n  error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := &CommandError{Command: "docker run", Output: []byte(tt.output), Err: exit}
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant:\n%s", got, tt.want)
			}
			if string(err.Output) != tt.output {
				t.Error("Output changed")
			}
			if !errors.Is(err, exit) {
				t.Error("CommandError does not unwrap to its cause")
			}
		})
	}
}
