package dashboard

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// page is one page's templates: the layout, the shared partials and the
// page's own "content".
type page struct{ t *template.Template }

var assetVersion = func() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
}()

var funcs = template.FuncMap{
	// asset names a static file with its content hash, so a new release's
	// script replaces a cached one at once.
	"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersion[name] },
	"time":  func(t time.Time) string { return fmtTime(t) },
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"ago":   func(t time.Time, now time.Time) string { return humanDuration(now.Sub(t)) + " ago" },
	"dur":   humanDuration,
	"pct":   func(n int) string { return strconv.Itoa(n) + " %" },
	"num":   func(n int64) string { return groupDigits(n) },
	"g":     func(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) },
	"add":   func(a, b int) int { return a + b },
	"add64": func(a, b int64) int64 { return a + b },
	"rate":  rate,
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// humanDuration says a duration the way people read it: 2h 05m, 45s.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %02dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func rate(part, whole int64) string {
	if whole <= 0 {
		return "—"
	}
	return strconv.FormatFloat(100*float64(part)/float64(whole), 'f', 1, 64) + " %"
}

func itoa(n int) string { return strconv.Itoa(n) }

var pageNames = []string{"releases", "release", "confirm", "ota", "signin", "error"}

func parsePages() (map[string]*page, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	out := map[string]*page{}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if t, err = t.ParseFS(assets, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", name, err)
		}
		out[name] = &page{t: t}
	}
	return out, nil
}

// layoutView is what the layout needs around every page.
type layoutView struct {
	Title  string
	Viewer *viewer
	Nav    string
	OTA    bool
	// Refresh, when set, reloads the page every so many seconds for
	// readers without JavaScript.
	Refresh int
	Page    any
}

// render writes a whole page, or only its "content" block when the
// request asks for ?partial=1 (the confirm dialog).
func (db *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, v *viewer, data any) {
	db.renderLayout(w, r, status, name, layoutView{Viewer: v, Page: data})
}

func (db *Dashboard) renderLayout(w http.ResponseWriter, r *http.Request, status int, name string, lv layoutView) {
	p := db.pages[name]
	lv.OTA = db.d.OTA != nil
	if lv.Nav == "" {
		lv.Nav = name
	}
	root := "layout"
	if r.URL.Query().Get("partial") == "1" {
		root = "content"
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, root, lv); err != nil {
		db.log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderBlock renders one named template of a page (a lane panel, an
// audit row) to a string, for live updates.
func (db *Dashboard) renderBlock(name, block string, data any) (string, error) {
	var buf bytes.Buffer
	if err := db.pages[name].t.ExecuteTemplate(&buf, block, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

type errorView struct {
	Title   string
	Message string
	Status  int
}

func (db *Dashboard) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	v := viewerOf(r.Context())
	db.renderLayout(w, r, status, "error", layoutView{Title: title, Viewer: v, Page: errorView{Title: title, Message: msg, Status: status}})
}
