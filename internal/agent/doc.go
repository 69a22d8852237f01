// Package agent is devctl's live-update agent and its client.
//
// Live update elsewhere (Tilt, Skaffold) streams a tar archive through
// `kubectl exec ... tar`, which needs tar and a shell in the image. The
// golden path builds FROM scratch and distroless images, so devctl runs its
// own small static agent as PID 1 of the app container instead:
//
//	devctl-agent [flags] -- /hello --addr=:8080
//
// The agent starts the app as a child in its own process group, forwards
// signals to it, reaps zombies, restarts it on request (SIGTERM, a grace
// period, SIGKILL) and reports when it listens on its port. Its HTTP API
// (token required) takes a batch of file writes and deletes plus an action
// (run a command, restart the app), applies each file atomically and answers
// once the new process listens; see [Client] and [Sync].
//
// # Files on a read-only root filesystem
//
// The golden-path chart sets readOnlyRootFilesystem, runAsNonRoot and drops
// every capability, so in live mode it lays the pod out like this:
//
//   - an emptyDir at /devctl, into which an init container running the agent
//     image copies the agent binary (`devctl-agent seed /devctl-agent
//     /devctl/bin/devctl-agent`);
//   - one emptyDir per synced directory, mounted over it in the app
//     container and seeded with the image's original content by a second
//     init container that runs the app image with `/devctl/bin/devctl-agent
//     seed --marker /devctl/seeded /static /devctl/sync/0 ...`: the agent is
//     static, so this works on scratch images;
//   - the entrypoint binary, a single file such as /hello, cannot be an
//     emptyDir: a write to exactly that path goes to /devctl/app/hello, and
//     the agent starts that copy instead of the original when it exists.
//
// Every other path is refused ([ErrPathNotAllowed]). The emptyDirs survive
// container restarts, so a restarted agent keeps serving the synced code and
// reports the generation it last applied.
package agent
