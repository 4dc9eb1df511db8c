package codepush

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Blobs stores package contents.
type Blobs interface {
	// Put stores the content read from r and returns its key, the SHA-256 hex
	// of the content, and its size. Storing the same content twice is allowed.
	Put(ctx context.Context, r io.Reader) (key, sha256Hex string, size int64, err error)
	// Open returns the content stored under key; a missing key yields an
	// error of KindNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// DirBlobs stores blobs in a local directory, content-addressed by SHA-256.
// Writes go to a temporary file renamed into place, so a reader never sees a
// partial blob; reads verify the hash and fail at EOF on corruption.
type DirBlobs struct {
	Dir string
}

var _ Blobs = DirBlobs{}

func validBlobKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil
}

func (b DirBlobs) path(key string) string {
	return filepath.Join(b.Dir, key[:2], key)
}

// Put implements Blobs.
func (b DirBlobs) Put(ctx context.Context, r io.Reader) (string, string, int64, error) {
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return "", "", 0, err
	}
	tmp, err := os.CreateTemp(b.Dir, ".upload-*")
	if err != nil {
		return "", "", 0, err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", "", 0, err
	}
	key := hex.EncodeToString(h.Sum(nil))
	if err := os.MkdirAll(filepath.Dir(b.path(key)), 0o755); err != nil {
		return "", "", 0, err
	}
	if err := os.Rename(tmp.Name(), b.path(key)); err != nil {
		return "", "", 0, err
	}
	return key, key, n, nil
}

// Open implements Blobs.
func (b DirBlobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !validBlobKey(key) {
		return nil, notFound("package %q not found", key)
	}
	f, err := os.Open(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("package %q not found", key)
	}
	if err != nil {
		return nil, err
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	return VerifyBlob(f, key, size, "codepush: blob"), nil
}

// VerifyBlob reads a stored blob through its name: every Blobs store names
// content by its SHA-256, so the read that reaches the end fails unless the
// bytes hash to key, and a store that hands back other bytes is caught
// before a client installs them. Size reports size (the package route's
// Content-Length; -1 when unknown). corrupt begins the error, naming the
// store's kind of object ("codepush: blob").
func VerifyBlob(rc io.ReadCloser, key string, size int64, corrupt string) io.ReadCloser {
	return &verifyingReader{rc: rc, h: sha256.New(), want: key, size: size, corrupt: corrupt}
}

type verifyingReader struct {
	rc      io.ReadCloser
	h       hash.Hash
	want    string
	size    int64
	corrupt string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%s %s is corrupt (content hashes to %s)", v.corrupt, v.want, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }

// Size is the blob's length in bytes.
func (v *verifyingReader) Size() int64 { return v.size }
