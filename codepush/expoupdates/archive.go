package expoupdates

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/swapjoy/releasepilot/codepush"
)

// MaxArchiveBytes bounds an uploaded or fetched export once unpacked.
const MaxArchiveBytes = 512 << 20

// ExtractDist unpacks an export archive (.tar.gz or .zip, told apart by
// their first bytes) into dir and opens it. The export may sit at the
// archive's root or in one top-level directory (dist/). Links, absolute
// paths and paths leaving dir are refused.
func ExtractDist(r io.Reader, dir string) (*Dist, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	var err error
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		err = extractTarGz(br, dir)
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		err = extractZip(br, dir)
	default:
		return nil, invalidf("dist", "", "not a .tar.gz or .zip archive")
	}
	if err != nil {
		return nil, err
	}
	root := dir
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		entries, _ := os.ReadDir(dir)
		if len(entries) == 1 && entries[0].IsDir() {
			root = filepath.Join(dir, entries[0].Name())
		}
	}
	return OpenDist(os.DirFS(root))
}

func safePath(dir, name string) (string, error) {
	name = strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\x00") || slices.Contains(strings.Split(name, "/"), "..") {
		return "", invalidf("dist", name, "a path outside the export")
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" || name == "." {
		return "", nil
	}
	if !fs.ValidPath(name) {
		return "", invalidf("dist", name, "a path outside the export")
	}
	return filepath.Join(dir, filepath.FromSlash(name)), nil
}

// writeOut writes the archive entry name to p. What is wrong with the
// archive — an entry that cannot be read to its end (cut short, a bad
// checksum), a path named twice, or a path that is both a file and a
// directory — is the uploader's and is invalid, naming the entry; only this
// machine's own failures (a full disk) are errors of the server.
func writeOut(p, name string, r io.Reader, budget *int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return invalidf("dist", name, "a path under a file of the same name")
		}
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return invalidf("dist", name, "named twice in the archive (or also a directory)")
	}
	if err != nil {
		return err
	}
	src := &entryReader{r: io.LimitReader(r, *budget+1)}
	n, err := io.Copy(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	*budget -= n
	if src.err != nil {
		return invalidf("dist", name, "cannot be read to its end: %v", src.err)
	}
	if err == nil && *budget < 0 {
		err = invalidf("dist", "", "the export is larger than %d bytes unpacked", int64(MaxArchiveBytes))
	}
	return err
}

// entryReader keeps the error of reading an archive entry apart from the
// errors of writing it out.
type entryReader struct {
	r   io.Reader
	err error
}

func (e *entryReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func extractTarGz(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return invalidf("dist", "", "not a gzip stream: %v", err)
	}
	tr := tar.NewReader(gz)
	budget := int64(MaxArchiveBytes)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalidf("dist", "", "not a tar archive: %v", err)
		}
		p, err := safePath(dir, h.Name)
		if err != nil || p == "" {
			if err != nil {
				return err
			}
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
					return invalidf("dist", h.Name, "a directory of the same name as a file")
				}
				return err
			}
		case tar.TypeReg:
			if err := writeOut(p, h.Name, tr, &budget); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
		default:
			return invalidf("dist", h.Name, "links and special files are not accepted in an export")
		}
	}
}

func extractZip(r io.Reader, dir string) error {
	// zip needs random access: spool it (bounded) beside the output.
	tmp, err := os.CreateTemp("", "expo-dist-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(r, MaxArchiveBytes+1))
	if err != nil {
		return err
	}
	if n > MaxArchiveBytes {
		return invalidf("dist", "", "the archive is larger than %d bytes", int64(MaxArchiveBytes))
	}
	zr, err := zip.NewReader(tmp, n)
	if err != nil {
		return invalidf("dist", "", "not a zip archive: %v", err)
	}
	budget := int64(MaxArchiveBytes)
	for _, f := range zr.File {
		p, err := safePath(dir, f.Name)
		if err != nil {
			return err
		}
		if p == "" || strings.HasSuffix(f.Name, "/") {
			continue
		}
		if !f.Mode().IsRegular() {
			return invalidf("dist", f.Name, "links and special files are not accepted in an export")
		}
		rc, err := f.Open()
		if err != nil {
			return invalidf("dist", f.Name, "%v", err)
		}
		err = writeOut(p, f.Name, rc, &budget)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ReleaseHandler accepts `releasepilot ota release --expo-dist`: a
// multipart form with the export archive in "dist" and the fields app (the
// releasepilot app), deployment (default Staging), platform (ios, android,
// or empty for every exported platform), runtimeVersion (default: from the
// export's app config), commit, description, rollout and mandatory. Each
// platform is released through cp's rules (the release gate among them);
// the answer lists the releases made. The caller authenticates and puts
// the actor in the context (codepush.WithActor).
func ReleaseHandler(cp Releaser, apps map[string]App) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, err := handleRelease(cp, apps, w, r)
		if err != nil {
			writeError(w, err, slog.Default(), r)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"releases": out})
	})
}

func handleRelease(cp Releaser, apps map[string]App, w http.ResponseWriter, r *http.Request) ([]map[string]any, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, invalidf("body", "", "a multipart/form-data body with the export in \"dist\" is required")
	}
	fields := map[string]string{}
	tmp, err := os.MkdirTemp("", "expo-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var dist *Dist
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, invalidf("body", "", "bad multipart body: %v", err)
		}
		if p.FormName() == "dist" {
			if dist != nil {
				return nil, invalidf("dist", "", "only one export per request")
			}
			if dist, err = ExtractDist(p, tmp); err != nil {
				return nil, err
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, 64<<10))
		if err != nil {
			return nil, invalidf(p.FormName(), "", "%v", err)
		}
		fields[p.FormName()] = string(b)
	}
	if dist == nil {
		return nil, invalidf("dist", "", "the export archive (field \"dist\") is required")
	}
	name := fields["app"]
	app, ok := apps[name]
	if !ok {
		return nil, &codepush.Error{Kind: codepush.KindNotFound, Field: "app", Value: name, Message: "no app with OTA protocol expo has this name"}
	}
	dep := fields["deployment"]
	if dep == "" {
		dep = codepush.Staging
	}
	rollout := 0
	if v := fields["rollout"]; v != "" {
		if rollout, err = strconv.Atoi(strings.TrimSuffix(v, "%")); err != nil {
			return nil, invalidf("rollout", v, "a whole percentage from 1 to 100")
		}
	}
	platforms := dist.Platforms()
	if p := fields["platform"]; p != "" {
		if _, ok := app.CodePushApps[p]; !ok {
			return nil, invalidf("platform", p, "not ios or android")
		}
		platforms = []string{p}
	}
	if len(platforms) == 0 {
		return nil, invalidf("dist", "", "the export has no ios or android bundle")
	}
	// Resolve every platform's runtime version before releasing any.
	rvs := map[string]string{}
	for _, p := range platforms {
		rv := fields["runtimeVersion"]
		if rv == "" {
			if rv, err = dist.RuntimeVersion(p); err != nil {
				return nil, err
			}
		}
		rvs[p] = rv
	}
	var out []map[string]any
	for _, p := range platforms {
		rel, u, err := Release(r.Context(), cp, ReleaseInput{
			App: app.CodePushApps[p], Deployment: dep, Dist: dist, Platform: p,
			RuntimeVersion: rvs[p], Description: fields["description"],
			Mandatory: fields["mandatory"] == "true", Rollout: rollout, Commit: fields["commit"],
		})
		if err != nil {
			if len(out) > 0 {
				return nil, fmt.Errorf("%s was released (%v); %s was not: %w", out[0]["platform"], out[0]["label"], p, err)
			}
			return nil, err
		}
		out = append(out, map[string]any{"platform": p, "app": app.CodePushApps[p], "deployment": dep, "label": rel.Label,
			"runtimeVersion": rel.AppVersion, "rollout": rel.Rollout, "packageHash": rel.PackageHash,
			"assets": len(u.Assets) + 1, "releasedBy": rel.ReleasedBy})
	}
	return out, nil
}
