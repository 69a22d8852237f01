// Package watch watches the source folders of an environment and turns
// bursts of file changes into batches, the input of a rebuild.
//
// A Watcher covers a list of named roots: each service's build context and
// the project folder (devctl.yaml, charts), nested or overlapping as they
// come. It watches every folder under them with fsnotify, one inotify watch
// per folder, except ignored folders, which cost nothing however big. It
// picks up folders created or moved in later and reports the files they
// already hold (written before their watch was added), and forgets folders
// that go away. A Batch lists the changed paths per root, so the daemon can
// tell "rebuild service X" from "re-render the chart" from nothing.
//
//	w, err := watch.New(ctx, watch.Options{Roots: roots, Logger: log})
//	if err != nil {
//		return err // errors.Is(err, watch.ErrWatchLimit): the text says what to run
//	}
//	go func() { errc <- w.Run(ctx) }()
//	for b := range w.Batches() {
//		// b.Changed("api"), b.Changes["project"], b.First ...
//	}
//
// # Coalescing
//
// A batch is handed out once no change has been seen for Options.Quiet, or
// Options.Cap after its first change if changes keep coming, so a `git
// checkout` of thousands of files is one batch. A batch nobody has received
// yet keeps growing. Changes to ignored paths do not count as activity.
//
// The quiet window is the latency floor of the inner loop: every save waits
// that long before a rebuild starts. Tilt waits 200 ms, the default here.
// Down to about 50 ms works on a local disk: an editor's save is one burst of
// events well under that. Shorter windows split multi-file operations (a
// formatter rewriting a package, a branch switch on a slow or busy disk, a
// code generator) into several batches, so the first rebuild may see half of
// the change and a second one follows. Builds are keyed by content, so the
// cost is a wasted build, never a wrong image. The cap bounds the wait while
// something writes continuously, such as a watch-mode compiler writing into
// the context; ignore such output instead.
//
// # Ignore rules
//
// Three sets of rules decide whether a root sees a path:
//
//   - .git is never watched nor reported, at any depth.
//   - .gitignore files with git's semantics: "!" negation, "dir/" matching
//     folders only, "/anchored", "**", nested files applying below their
//     folder, the last matching rule winning, nothing re-included below an
//     ignored folder; plus the repository's .git/info/exclude and the
//     .gitignore files above a root up to the repository's top, less the
//     rules that would ignore the root's own folder. They describe the
//     tree, so they apply to every root. The user's global excludes file is
//     left out: what a project watches should not depend on who runs it.
//   - per root, .dockerignore (Root.Dockerignore, for a build context) and
//     Root.Ignore, with .dockerignore semantics: patterns are anchored at the
//     root and a later "!" pattern re-includes. An excluded folder is still
//     watched when a "!" pattern names a path below it, as the Docker CLI
//     does.
//
// Edited ignore files apply at once: folders they now exclude are
// unwatched, folders they release are watched. Every kind of event counts,
// chmod included, as modes are part of an image. Symbolic links are
// reported but not followed.
//
// .gitignore matching uses go-git's plumbing/format/gitignore: it belongs to
// a widely used, maintained module, implements the rules above with
// per-folder domains (what nested .gitignore files need), and links only
// go-billy's interfaces and go-git's small config parser (five small modules
// in go.mod, no cgo). The alternatives fall short: sabhiram/go-gitignore has
// no nested files and no change since 2021; monochromegane/go-gitignore
// (already in the module graph through kustomize) lets any "!" rule win
// whatever its order. .dockerignore matching uses moby/patternmatcher like
// the image build, so the watcher and the build context agree.
//
// # Pause, errors, limits
//
// Pause holds batches back and Resume hands out everything held as one
// batch: nothing is lost. When the kernel drops events (inotify queue
// overflow) the pending batch is marked Overflow, meaning "treat every root
// as changed", and the roots are walked again for folders made meanwhile.
//
// Each watched folder takes one inotify watch out of the user's
// fs.inotify.max_user_watches, and each Watcher one instance out of
// fs.inotify.max_user_instances. CheckLimits tells ahead whether they
// suffice; New and Run fail with an ErrWatchLimit error that says which
// sysctl to raise, how, and where to keep it.
//
// Tests inject a FakeNotifier and a fake clock (k8s.io/utils/clock/testing)
// through Options to step coalescing deterministically.
package watch
