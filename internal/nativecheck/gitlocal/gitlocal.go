// Package gitlocal reads a local git checkout through the git command, as a
// nativecheck.Source, so a developer or a CI job can fingerprint commits
// with no releasepilot server.
//
// It reads commits, not the working tree: `git ls-tree` gives the same
// (path, blob sha) pairs the GitHub trees API gives the service, so a
// commit's fingerprint here equals the one the service computes for the
// same commit. The git command (not a Go reimplementation) handles packed
// objects, worktrees, partial clones' lazy fetches and repository formats
// as the user's own git does. Uncommitted changes are reported, not
// fingerprinted.
package gitlocal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/swapjoy/releasepilot/internal/nativecheck"
)

// ErrNotRepository means the directory is not inside a git work tree.
var ErrNotRepository = errors.New("not a git checkout")

// ErrUnknownRef means a revision does not name a commit of the repository.
var ErrUnknownRef = errors.New("unknown git revision")

// Repo is a local git repository. It is safe for concurrent use; Close
// stops the git process it keeps for reading files.
type Repo struct {
	// Top is the top-level directory of the work tree.
	Top string
	// Prefix is the directory Open was given, relative to Top, with a
	// trailing slash ("" at the top).
	Prefix string
	git    string

	mu    sync.Mutex
	batch *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
}

var _ nativecheck.Source = (*Repo)(nil)

// Open finds the repository holding dir.
func Open(ctx context.Context, dir string) (*Repo, error) {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("gitlocal: the git command is needed: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("gitlocal: --dir %q: %w", dir, err)
	}
	out, err := run(ctx, git, abs, nil, "rev-parse", "--show-toplevel", "--show-prefix")
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%v)", ErrNotRepository, dir, err)
	}
	lines := strings.SplitN(strings.TrimRight(string(out), "\n"), "\n", 2)
	r := &Repo{Top: lines[0], git: git}
	if len(lines) > 1 {
		r.Prefix = lines[1]
	}
	return r, nil
}

// run runs git in dir and returns its standard output; an error carries
// git's message.
func run(ctx context.Context, git, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, git, append([]string{"-C", dir, "-c", "core.quotepath=off"}, args...)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, err
		}
		return nil, errors.New(msg)
	}
	return out, nil
}

// Resolve returns the commit a revision (a tag, a branch, HEAD, a sha)
// names.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n") {
		return "", fmt.Errorf("%w %q", ErrUnknownRef, rev)
	}
	out, err := run(ctx, r.git, r.Top, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("%w %q", ErrUnknownRef, rev)
	}
	return strings.TrimSpace(string(out)), nil
}

// Dirty lists the paths with uncommitted changes (untracked files that
// are not ignored included).
func (r *Repo) Dirty(ctx context.Context) ([]string, error) {
	out, err := run(ctx, r.git, r.Top, nil, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
	if err != nil {
		return nil, fmt.Errorf("gitlocal: git status: %w", err)
	}
	var paths []string
	recs := strings.Split(string(out), "\x00")
	for i := 0; i < len(recs); i++ {
		rec := recs[i]
		if len(rec) < 4 {
			continue
		}
		paths = append(paths, rec[3:])
		if rec[0] == 'R' || rec[0] == 'C' {
			i++ // the source path of a rename follows
		}
	}
	return paths, nil
}

// Tree implements nativecheck.Source with `git ls-tree -r -t -l -z`.
func (r *Repo) Tree(ctx context.Context, commit string) ([]nativecheck.Entry, bool, error) {
	out, err := run(ctx, r.git, r.Top, nil, "ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit)
	if err != nil {
		return nil, false, fmt.Errorf("gitlocal: ls-tree %s: %w", commit, err)
	}
	var entries []nativecheck.Entry
	for rec := range strings.SplitSeq(string(out), "\x00") {
		if rec == "" {
			continue
		}
		// <mode> SP <type> SP <object> SP+ <size> TAB <path>
		meta, p, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 {
			return nil, false, fmt.Errorf("gitlocal: unexpected ls-tree line %q", rec)
		}
		e := nativecheck.Entry{Path: p, Mode: f[0], Type: f[1], SHA: f[2]}
		if f[3] != "-" {
			if e.Size, err = strconv.ParseInt(f[3], 10, 64); err != nil {
				return nil, false, fmt.Errorf("gitlocal: unexpected ls-tree size in %q", rec)
			}
		}
		entries = append(entries, e)
	}
	return entries, false, nil
}

// ReadFile implements nativecheck.Source through one long-running
// `git cat-file --batch`.
func (r *Repo) ReadFile(ctx context.Context, commit, path string) ([]byte, error) {
	if strings.ContainsAny(commit+path, "\n\x00") {
		return nil, fmt.Errorf("gitlocal: %q: %w", path, fs.ErrNotExist)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.batch == nil {
		cmd := exec.Command(r.git, "-C", r.Top, "cat-file", "--batch")
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("gitlocal: start git cat-file: %w", err)
		}
		r.batch, r.in, r.out = cmd, in, bufio.NewReader(out)
	}
	if _, err := fmt.Fprintf(r.in, "%s:%s\n", commit, path); err != nil {
		r.closeLocked()
		return nil, fmt.Errorf("gitlocal: cat-file: %w", err)
	}
	header, err := r.out.ReadString('\n')
	if err != nil {
		r.closeLocked()
		return nil, fmt.Errorf("gitlocal: cat-file: %w", err)
	}
	header = strings.TrimSuffix(header, "\n")
	if strings.HasSuffix(header, " missing") || strings.HasSuffix(header, " ambiguous") {
		return nil, fmt.Errorf("gitlocal: %s at %s: %w", path, commit, fs.ErrNotExist)
	}
	// <sha> SP <type> SP <size>
	f := strings.Fields(header)
	if len(f) != 3 {
		r.closeLocked()
		return nil, fmt.Errorf("gitlocal: unexpected cat-file header %q", header)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		r.closeLocked()
		return nil, fmt.Errorf("gitlocal: unexpected cat-file header %q", header)
	}
	buf := make([]byte, size+1) // content and a newline
	if _, err := io.ReadFull(r.out, buf); err != nil {
		r.closeLocked()
		return nil, fmt.Errorf("gitlocal: cat-file: %w", err)
	}
	if f[1] != "blob" {
		return nil, fmt.Errorf("gitlocal: %s at %s is a %s, not a file", path, commit, f[1])
	}
	return buf[:size], nil
}

// Close stops the git process kept for reading files.
func (r *Repo) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
	return nil
}

func (r *Repo) closeLocked() {
	if r.batch == nil {
		return
	}
	_ = r.in.Close()
	_ = r.batch.Wait()
	r.batch, r.in, r.out = nil, nil, nil
}
