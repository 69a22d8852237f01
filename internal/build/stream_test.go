package build

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestReadBuildStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		stream     string
		wantOutput string
		wantID     string
		wantErr    string // BuildError message; "" for success
		wantTail   int
	}{
		{
			name: "success with aux ID",
			stream: `{"stream":"Step 1/2 : FROM scratch\n"}` + "\n" +
				`{"stream":" ---\u003e \n"}{"stream":"Step 2/2 : COPY a /a"}{"stream":"\n"}` +
				`{"aux":{"ID":"sha256:abc"}}{"stream":"Successfully built abc\n"}`,
			wantOutput: "Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY a /a\nSuccessfully built abc\n",
			wantID:     "sha256:abc",
		},
		{
			name:       "status lines",
			stream:     `{"status":"Downloading","id":"layer1"}{"status":"Done"}`,
			wantOutput: "layer1: Downloading\nDone\n",
		},
		{
			name: "error in stream",
			stream: `{"stream":"Step 1/2 : FROM scratch\n"}{"stream":"Step 2/2 : FROBNICATE"}` +
				`{"errorDetail":{"message":"unknown instruction: FROBNICATE"},"error":"unknown instruction: FROBNICATE"}`,
			wantOutput: "Step 1/2 : FROM scratch\nStep 2/2 : FROBNICATE\n",
			wantErr:    "unknown instruction: FROBNICATE",
			wantTail:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			id, err := readBuildStream(strings.NewReader(tt.stream), newLineWriter(&out))
			if out.String() != tt.wantOutput {
				t.Errorf("output = %q, want %q", out.String(), tt.wantOutput)
			}
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error = %v, want nil", err)
				}
				return
			}
			var be *BuildError
			if !errors.As(err, &be) {
				t.Fatalf("error = %v, want a *BuildError", err)
			}
			if be.Message != tt.wantErr || be.Step != StepImageBuild || len(be.Output) != tt.wantTail {
				t.Errorf("BuildError = %+v, want message %q and %d output lines", be, tt.wantErr, tt.wantTail)
			}
		})
	}
}

func TestLineWriterKeepsTail(t *testing.T) {
	t.Parallel()
	lw := newLineWriter(nil)
	for i := range 50 {
		fmt.Fprintf(lw, "line %d\n", i)
	}
	fmt.Fprint(lw, "partial")
	lw.Flush()
	tail := lw.Tail()
	if len(tail) != tailLines || tail[0] != "line 31" || tail[len(tail)-1] != "partial" {
		t.Errorf("tail = %q, want the last %d lines ending in %q", tail, tailLines, "partial")
	}
}

func TestNewUnreachableEngine(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), WithHost("unix:///nonexistent.sock"))
	if !errors.Is(err, ErrDockerUnavailable) {
		t.Fatalf("New = %v, want ErrDockerUnavailable", err)
	}
	for _, want := range []string{"/nonexistent.sock", "sudo systemctl start docker", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
