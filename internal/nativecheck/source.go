package nativecheck

import "context"

// Entry is one entry of a git tree, with Path relative to the repository root.
type Entry struct {
	Path string
	// Type is "blob", "tree" or "commit" (a submodule), as git names them.
	Type string
	Mode string
	// SHA is the git object id: for a blob, sha1("blob <len>\x00" + content).
	SHA  string
	Size int64
}

// Source reads one repository at a commit.
//
// Tree returns every entry of the commit's tree, recursively. truncated
// reports that the list is incomplete; a fingerprint is never computed from a
// truncated tree. ReadFile returns a file's contents and an error wrapping
// fs.ErrNotExist when the path is absent at that commit.
type Source interface {
	Tree(ctx context.Context, commit string) (entries []Entry, truncated bool, err error)
	ReadFile(ctx context.Context, commit, path string) ([]byte, error)
}

// Platform is a mobile platform a binary is built for.
type Platform string

// The platforms a fingerprint is computed for.
const (
	IOS     Platform = "ios"
	Android Platform = "android"
)

// Platforms lists every platform, in a stable order.
var Platforms = []Platform{Android, IOS}
