package apiclient

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
)

// ExpoRelease releases the output directory dir of npx expo export with the
// text fields of POST /v1/expo/release; the answer lists one release per
// platform.
func (c *Client) ExpoRelease(ctx context.Context, dir string, fields map[string]string) ([]map[string]any, error) {
	body, contentType := ExpoDistBody(dir, fields)
	var out struct {
		Releases []map[string]any `json:"releases"`
	}
	err := c.uploading().send(ctx, http.MethodPost, "v1/expo/release", nil, body, contentType, &out)
	return out.Releases, err
}

// ExpoDistBody streams a multipart form for POST /v1/expo/release: the
// text fields, then the export directory dir as a tar.gz in "dist". The
// archive is written as the request is sent; nothing is held in memory.
func ExpoDistBody(dir string, fields map[string]string) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeExpoDist(mw, dir, fields))
	}()
	return pr, mw.FormDataContentType()
}

func writeExpoDist(mw *multipart.Writer, dir string, fields map[string]string) error {
	for k, v := range fields {
		if v == "" {
			continue
		}
		if err := mw.WriteField(k, v); err != nil {
			return err
		}
	}
	fw, err := mw.CreateFormFile("dist", "dist.tar.gz")
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(fw)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // links are not part of an export
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return mw.Close()
}
