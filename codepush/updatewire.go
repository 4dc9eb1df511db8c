package codepush

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Update checks are the one request every device sends on every start and
// resume, so their wire work is done without the general machinery: the
// query is read without building url.Values, and the answer is appended
// into a pooled buffer instead of going through reflection. Both give
// exactly what the general path gives (FuzzUpdateQuery and
// FuzzUpdateCheckBody hold them to it).

// The query parameters an update check reads, in both spellings.
const (
	qDeploymentKey = iota
	qDeploymentKeyCamel
	qAppVersion
	qAppVersionCamel
	qPackageHash
	qPackageHashCamel
	qLabel
	qClientUniqueID
	qClientUniqueIDCamel
	qIsCompanion
	qIsCompanionCamel
	qCount
)

func updateQueryField(k string) int {
	switch k {
	case "deployment_key":
		return qDeploymentKey
	case "deploymentKey":
		return qDeploymentKeyCamel
	case "app_version":
		return qAppVersion
	case "appVersion":
		return qAppVersionCamel
	case "package_hash":
		return qPackageHash
	case "packageHash":
		return qPackageHashCamel
	case "label":
		return qLabel
	case "client_unique_id":
		return qClientUniqueID
	case "clientUniqueId":
		return qClientUniqueIDCamel
	case "is_companion":
		return qIsCompanion
	case "isCompanion":
		return qIsCompanionCamel
	}
	return -1
}

// parseUpdateQuery is ParseUpdateQuery(url.ParseQuery(raw)) with the parse
// error ignored, as r.URL.Query() does: the first value of each key, pairs
// with a semicolon or a bad escape skipped. Escaped keys and values are
// unescaped (and allocate); plain ones are slices of raw.
func parseUpdateQuery(raw string) UpdateRequest {
	if len(raw) >= 9999 {
		// It may hold more parameters than net/url accepts (10,000),
		// where ParseQuery gives up on all of them.
		q, _ := url.ParseQuery(raw)
		return ParseUpdateQuery(q)
	}
	var v [qCount]string
	var set [qCount]bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			u, err := url.QueryUnescape(k)
			if err != nil {
				continue
			}
			k = u
		}
		i := updateQueryField(k)
		if i < 0 || set[i] {
			continue
		}
		if strings.ContainsAny(val, "%+") {
			u, err := url.QueryUnescape(val)
			if err != nil {
				continue // ParseQuery drops the pair: a later one may count
			}
			val = u
		}
		v[i], set[i] = val, true
	}
	get := func(snake, camel int) string {
		if v[snake] != "" {
			return v[snake]
		}
		return v[camel]
	}
	return UpdateRequest{
		DeploymentKey:  get(qDeploymentKey, qDeploymentKeyCamel),
		AppVersion:     get(qAppVersion, qAppVersionCamel),
		PackageHash:    get(qPackageHash, qPackageHashCamel),
		Label:          v[qLabel],
		ClientUniqueID: get(qClientUniqueID, qClientUniqueIDCamel),
		IsCompanion:    strings.EqualFold(get(qIsCompanion, qIsCompanionCamel), "true"),
	}
}

// appendJSONString appends s as encoding/json encodes a string. Printable
// ASCII that json escapes for no reason (no quote, backslash, <, > or &)
// is copied as is; anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// updateCheckKeys are the answer's member names, snake_case (v0.1 route)
// or camelCase (legacy route), in the order of updateInfoSnake and
// updateInfoCamel.
var updateCheckKeys = [2][12]string{
	{`{"update_info":{"download_url":`, `,"description":`, `,"is_available":`, `,"is_mandatory":`, `,"app_version":`,
		`,"package_hash":`, `,"label":`, `,"package_size":`, `,"update_app_version":`, `,"should_run_binary_version":`, `,"target_binary_range":`, `}}`},
	{`{"updateInfo":{"downloadURL":`, `,"description":`, `,"isAvailable":`, `,"isMandatory":`, `,"appVersion":`,
		`,"packageHash":`, `,"label":`, `,"packageSize":`, `,"updateAppVersion":`, `,"shouldRunBinaryVersion":`, `,"target_binary_range":`, `}}`},
}

// appendUpdateCheck appends the answer to an update check, byte for byte
// what json.Marshal gives for the update_info (snake) or updateInfo
// wrapper of toCamel(info).
func appendUpdateCheck(dst []byte, snake bool, i updateInfoCamel) []byte {
	k := &updateCheckKeys[1]
	if snake {
		k = &updateCheckKeys[0]
	}
	dst = appendJSONString(append(dst, k[0]...), i.DownloadURL)
	dst = appendJSONString(append(dst, k[1]...), i.Description)
	dst = appendJSONBool(append(dst, k[2]...), i.IsAvailable)
	dst = appendJSONBool(append(dst, k[3]...), i.IsMandatory)
	dst = appendJSONString(append(dst, k[4]...), i.AppVersion)
	dst = appendJSONString(append(dst, k[5]...), i.PackageHash)
	dst = appendJSONString(append(dst, k[6]...), i.Label)
	dst = strconv.AppendInt(append(dst, k[7]...), i.PackageSize, 10)
	dst = appendJSONBool(append(dst, k[8]...), i.UpdateAppVersion)
	dst = appendJSONBool(append(dst, k[9]...), i.ShouldRunBinaryVersion)
	dst = appendJSONString(append(dst, k[10]...), i.TargetBinaryRange)
	return append(dst, k[11]...)
}

var updateCheckBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeUpdateCheck answers 200 with the update check's JSON.
func writeUpdateCheck(w http.ResponseWriter, snake bool, info updateInfoCamel) {
	bp := updateCheckBuffers.Get().(*[]byte)
	body := appendUpdateCheck((*bp)[:0], snake, info)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body) // copied out before Write returns; the buffer can go back
	if cap(body) <= 64<<10 {
		*bp = body
		updateCheckBuffers.Put(bp)
	}
}
