package githubtest

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// Files is a commit's full snapshot: path → content.
type Files map[string]string

// With returns a copy of f with changes added or overwritten; use
// WithDeleted to remove paths.
func (f Files) With(changes Files) Files {
	out := maps.Clone(f)
	if out == nil {
		out = Files{}
	}
	for p, c := range changes {
		out[p] = c
	}
	return out
}

// WithDeleted returns a copy of f without paths.
func (f Files) WithDeleted(paths ...string) Files {
	out := maps.Clone(f)
	for _, p := range paths {
		delete(out, p)
	}
	return out
}

// BlobSHA is git's object id of a file: sha1("blob <len>\x00" + content).
func BlobSHA(content []byte) string {
	return objectSHA("blob", content)
}

func objectSHA(kind string, body []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", kind, len(body))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

type treeEntry struct {
	name string
	mode string // "100644", "040000"
	typ  string // "blob", "tree"
	sha  string
	size int
}

type commitObj struct {
	sha     string
	tree    string
	parents []string
	message string
	when    time.Time
	files   Files
}

type tagObj struct {
	sha     string
	name    string
	target  string
	message string
	when    time.Time
}

// Repo is one in-memory repository. Build it with Commit, Branch and the
// tag methods; the Server serves it. All methods are safe for concurrent use
// with requests.
type Repo struct {
	s             *Server
	fullName      string
	defaultBranch string
	blobs         map[string][]byte
	trees         map[string][]treeEntry
	commits       map[string]*commitObj
	tags          map[string]*tagObj
	refs          map[string]string // "refs/tags/v1" → object sha
	releases      []*releaseObj
	deployments   []*Deployment
	clock         time.Time
}

// FullName is "owner/name".
func (r *Repo) FullName() string { return r.fullName }

func (r *Repo) tick() time.Time {
	r.clock = r.clock.Add(time.Minute)
	return r.clock
}

// Commit records a commit whose tree is exactly files, with the given
// parents (none for a root commit; unknown parents are recorded as given
// and end history walks), and moves the default branch to it. It
// returns the real git commit SHA.
func (r *Repo) Commit(message string, files Files, parents ...string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	tree := r.writeTree(files)
	when := r.tick()
	var body bytes.Buffer
	fmt.Fprintf(&body, "tree %s\n", tree)
	for _, p := range parents {
		fmt.Fprintf(&body, "parent %s\n", p)
	}
	sig := fmt.Sprintf("Release Bot <bot@example.com> %d +0000", when.Unix())
	fmt.Fprintf(&body, "author %s\ncommitter %s\n\n%s\n", sig, sig, message)
	sha := objectSHA("commit", body.Bytes())
	r.commits[sha] = &commitObj{sha: sha, tree: tree, parents: parents, message: message, when: when, files: maps.Clone(files)}
	r.refs["refs/heads/"+r.defaultBranch] = sha
	return sha
}

// Files returns a copy of a commit's snapshot, to derive the next commit;
// nil for an unknown commit.
func (r *Repo) Files(commit string) Files {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	c := r.commits[commit]
	if c == nil {
		return nil
	}
	return maps.Clone(c.files)
}

// TreeSHA returns the root tree SHA of a commit.
func (r *Repo) TreeSHA(commit string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if c := r.commits[commit]; c != nil {
		return c.tree
	}
	return ""
}

// Branch points refs/heads/name at commit.
func (r *Repo) Branch(name, commit string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.refs["refs/heads/"+name] = commit
}

// LightweightTag points refs/tags/name at commit.
func (r *Repo) LightweightTag(name, commit string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.refs["refs/tags/"+name] = commit
}

// AnnotatedTag creates a tag object for commit and points refs/tags/name at
// it. It returns the tag object's SHA (what a push event reports as
// "after").
func (r *Repo) AnnotatedTag(name, commit, message string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	when := r.tick()
	body := fmt.Sprintf("object %s\ntype commit\ntag %s\ntagger Release Bot <bot@example.com> %d +0000\n\n%s\n", commit, name, when.Unix(), message)
	sha := objectSHA("tag", []byte(body))
	r.tags[sha] = &tagObj{sha: sha, name: name, target: commit, message: message, when: when}
	r.refs["refs/tags/"+name] = sha
	return sha
}

// DeleteTag removes refs/tags/name.
func (r *Repo) DeleteTag(name string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	delete(r.refs, "refs/tags/"+name)
}

type dirNode struct {
	files map[string][]byte
	dirs  map[string]*dirNode
}

// writeTree stores blobs and trees for files and returns the root tree SHA.
func (r *Repo) writeTree(files Files) string {
	root := &dirNode{}
	for p, c := range files {
		parts := strings.Split(strings.Trim(p, "/"), "/")
		n := root
		for _, d := range parts[:len(parts)-1] {
			if n.dirs == nil {
				n.dirs = map[string]*dirNode{}
			}
			if n.dirs[d] == nil {
				n.dirs[d] = &dirNode{}
			}
			n = n.dirs[d]
		}
		if n.files == nil {
			n.files = map[string][]byte{}
		}
		n.files[parts[len(parts)-1]] = []byte(c)
	}
	return r.writeDir(root)
}

func (r *Repo) writeDir(n *dirNode) string {
	entries := make([]treeEntry, 0, len(n.files)+len(n.dirs))
	for name, c := range n.files {
		sha := BlobSHA(c)
		if _, ok := r.blobs[sha]; !ok {
			r.blobs[sha] = c
		}
		entries = append(entries, treeEntry{name: name, mode: "100644", typ: "blob", sha: sha, size: len(c)})
	}
	for name, d := range n.dirs {
		entries = append(entries, treeEntry{name: name, mode: "040000", typ: "tree", sha: r.writeDir(d)})
	}
	// git orders entries by name, comparing a tree's name as if it ended in '/'.
	key := func(e treeEntry) string {
		if e.typ == "tree" {
			return e.name + "/"
		}
		return e.name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	var body bytes.Buffer
	for _, e := range entries {
		mode := e.mode
		if e.typ == "tree" {
			mode = "40000" // git writes tree modes without the leading zero
		}
		raw, _ := hex.DecodeString(e.sha)
		fmt.Fprintf(&body, "%s %s\x00", mode, e.name)
		body.Write(raw)
	}
	sha := objectSHA("tree", body.Bytes())
	r.trees[sha] = entries
	return sha
}

// peel resolves a commit, tag object, tree, or ref name to (commit, tree).
func (r *Repo) peel(name string) (commit, tree string, ok bool) {
	if sha, found := r.refs["refs/heads/"+name]; found {
		name = sha
	} else if sha, found := r.refs["refs/tags/"+name]; found {
		name = sha
	} else if sha, found := r.refs[name]; found {
		name = sha
	}
	for i := 0; i < 10; i++ {
		if t := r.tags[name]; t != nil {
			name = t.target
			continue
		}
		break
	}
	if c := r.commits[name]; c != nil {
		return c.sha, c.tree, true
	}
	if _, isTree := r.trees[name]; isTree {
		return "", name, true
	}
	return "", "", false
}
