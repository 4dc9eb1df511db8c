package nativecheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A small JavaScript tokenizer for react-native.config.js files. It knows
// enough of the language to split a file into tokens without evaluating
// anything; whatever it cannot tokenize is an error, and an error makes the
// config "not understood", which counts as native.

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tTemplate
	tNumber
	tRegex
	tPunct
)

type token struct {
	kind tokKind
	val  string // identifier name, punctuator, cooked string
	nl   bool   // a line terminator precedes the token
	// A template literal: cooked text parts around substitutions.
	parts []string
	exprs [][]token
}

const (
	maxConfigBytes = 256 << 10
	maxTokens      = 100_000
)

var errJSSyntax = errors.New("not JavaScript this reader understands")

type lexer struct {
	src  string
	pos  int
	prev *token // last significant token, for regex detection
	n    int
}

func lexJS(src string) ([]token, error) {
	if len(src) > maxConfigBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", maxConfigBytes)
	}
	l := &lexer{src: src}
	if strings.HasPrefix(src, "#!") {
		for l.pos < len(src) && src[l.pos] != '\n' {
			l.pos++
		}
	}
	toks, err := l.until(false)
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// until tokenizes up to the end of input, or, inside a template
// substitution, up to its closing brace (consumed).
func (l *lexer) until(inSubst bool) ([]token, error) {
	var out []token
	depth := 0
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tEOF {
			if inSubst {
				return nil, fmt.Errorf("%w: unterminated template substitution", errJSSyntax)
			}
			out = append(out, t)
			return out, nil
		}
		if inSubst && t.kind == tPunct {
			switch t.val {
			case "{":
				depth++
			case "}":
				if depth == 0 {
					return out, nil
				}
				depth--
			}
		}
		l.n++
		if l.n > maxTokens {
			return nil, fmt.Errorf("file has more than %d tokens", maxTokens)
		}
		out = append(out, t)
		l.prev = &out[len(out)-1]
	}
}

func isIdentStart(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r)
}

func isIdentPart(r rune) bool {
	return isIdentStart(r) || unicode.IsDigit(r) || r == '\u200c' || r == '\u200d'
}

// regexAllowed reports whether a '/' starts a regular expression here.
func (l *lexer) regexAllowed() bool {
	p := l.prev
	if p == nil {
		return true
	}
	switch p.kind {
	case tNumber, tString, tTemplate, tRegex:
		return false
	case tIdent:
		switch p.val {
		case "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw", "instanceof", "yield", "await":
			return true
		}
		return false
	case tPunct:
		return p.val != ")" && p.val != "]" && p.val != "}"
	}
	return true
}

var puncts = []string{
	">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=",
	"=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "**", "++", "--",
	"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", ">>",
}

func (l *lexer) next() (token, error) {
	nl := false
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		switch {
		case c == '\n' || c == '\r':
			nl = true
			l.pos++
		case c == ' ' || c == '\t' || c == '\v' || c == '\f':
			l.pos++
		case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '/':
			for l.pos < len(src) && src[l.pos] != '\n' && src[l.pos] != '\r' {
				l.pos++
			}
		case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '*':
			end := strings.Index(src[l.pos+2:], "*/")
			if end < 0 {
				return token{}, fmt.Errorf("%w: unterminated comment", errJSSyntax)
			}
			if strings.ContainsAny(src[l.pos:l.pos+2+end], "\n\r") {
				nl = true
			}
			l.pos += end + 4
		case c >= 0x80:
			r, size := utf8.DecodeRuneInString(src[l.pos:])
			if r == '\u00a0' || r == '\ufeff' || unicode.Is(unicode.Zs, r) {
				l.pos += size
				continue
			}
			if r == '\u2028' || r == '\u2029' {
				nl = true
				l.pos += size
				continue
			}
			goto token
		default:
			goto token
		}
	}
	return token{kind: tEOF, nl: true}, nil

token:
	start := l.pos
	c := src[l.pos]
	r, size := utf8.DecodeRuneInString(src[l.pos:])
	switch {
	case isIdentStart(r):
		l.pos += size
		for l.pos < len(src) {
			r, size := utf8.DecodeRuneInString(src[l.pos:])
			if !isIdentPart(r) {
				break
			}
			l.pos += size
		}
		if l.pos < len(src) && src[l.pos] == '\\' {
			return token{}, fmt.Errorf("%w: escaped identifier", errJSSyntax)
		}
		return token{kind: tIdent, val: src[start:l.pos], nl: nl}, nil
	case c >= '0' && c <= '9', c == '.' && l.pos+1 < len(src) && src[l.pos+1] >= '0' && src[l.pos+1] <= '9':
		l.pos++
		for l.pos < len(src) {
			d := src[l.pos]
			if d == '.' || d == '_' || (d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') {
				l.pos++
				continue
			}
			if (d == '+' || d == '-') && (src[l.pos-1] == 'e' || src[l.pos-1] == 'E') && !strings.HasPrefix(src[start:], "0x") && !strings.HasPrefix(src[start:], "0X") {
				l.pos++
				continue
			}
			break
		}
		return token{kind: tNumber, val: src[start:l.pos], nl: nl}, nil
	case c == '"' || c == '\'':
		s, err := l.quoted(c)
		if err != nil {
			return token{}, err
		}
		return token{kind: tString, val: s, nl: nl}, nil
	case c == '`':
		t, err := l.template()
		if err != nil {
			return token{}, err
		}
		t.nl = nl
		return t, nil
	case c == '/' && l.regexAllowed():
		l.pos++
		inClass := false
		for {
			if l.pos >= len(src) || src[l.pos] == '\n' || src[l.pos] == '\r' {
				return token{}, fmt.Errorf("%w: unterminated regular expression", errJSSyntax)
			}
			d := src[l.pos]
			l.pos++
			if d == '\\' {
				l.pos++
				continue
			}
			if d == '[' {
				inClass = true
			} else if d == ']' {
				inClass = false
			} else if d == '/' && !inClass {
				break
			}
		}
		for l.pos < len(src) && isIdentPart(rune(src[l.pos])) {
			l.pos++
		}
		return token{kind: tRegex, val: src[start:l.pos], nl: nl}, nil
	}
	for _, p := range puncts {
		if strings.HasPrefix(src[l.pos:], p) {
			l.pos += len(p)
			return token{kind: tPunct, val: p, nl: nl}, nil
		}
	}
	if strings.IndexByte("{}()[];,<>+-*/%&|^!~?:=.@#", c) >= 0 {
		l.pos++
		return token{kind: tPunct, val: string(c), nl: nl}, nil
	}
	return token{}, fmt.Errorf("%w: unexpected character %q", errJSSyntax, r)
}

// quoted reads a string literal and returns its cooked value.
func (l *lexer) quoted(q byte) (string, error) {
	src := l.src
	l.pos++
	var sb strings.Builder
	for {
		if l.pos >= len(src) || src[l.pos] == '\n' || src[l.pos] == '\r' {
			return "", fmt.Errorf("%w: unterminated string", errJSSyntax)
		}
		c := src[l.pos]
		if c == q {
			l.pos++
			return sb.String(), nil
		}
		if c == '\\' {
			if err := l.escape(&sb); err != nil {
				return "", err
			}
			continue
		}
		sb.WriteByte(c)
		l.pos++
	}
}

// escape cooks one escape sequence starting at the backslash.
func (l *lexer) escape(sb *strings.Builder) error {
	src := l.src
	if l.pos+1 >= len(src) {
		return fmt.Errorf("%w: unterminated escape", errJSSyntax)
	}
	e := src[l.pos+1]
	l.pos += 2
	switch e {
	case 'n':
		sb.WriteByte('\n')
	case 't':
		sb.WriteByte('\t')
	case 'r':
		sb.WriteByte('\r')
	case 'b':
		sb.WriteByte('\b')
	case 'f':
		sb.WriteByte('\f')
	case 'v':
		sb.WriteByte('\v')
	case '0':
		sb.WriteByte(0)
	case '\r':
		if l.pos < len(src) && src[l.pos] == '\n' {
			l.pos++
		}
	case '\n':
	case 'x':
		if l.pos+2 > len(src) {
			return fmt.Errorf("%w: bad \\x escape", errJSSyntax)
		}
		v, err := strconv.ParseUint(src[l.pos:l.pos+2], 16, 8)
		if err != nil {
			return fmt.Errorf("%w: bad \\x escape", errJSSyntax)
		}
		sb.WriteRune(rune(v))
		l.pos += 2
	case 'u':
		var hex string
		if l.pos < len(src) && src[l.pos] == '{' {
			end := strings.IndexByte(src[l.pos:], '}')
			if end < 0 {
				return fmt.Errorf("%w: bad \\u escape", errJSSyntax)
			}
			hex, l.pos = src[l.pos+1:l.pos+end], l.pos+end+1
		} else {
			if l.pos+4 > len(src) {
				return fmt.Errorf("%w: bad \\u escape", errJSSyntax)
			}
			hex, l.pos = src[l.pos:l.pos+4], l.pos+4
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || v > unicode.MaxRune {
			return fmt.Errorf("%w: bad \\u escape", errJSSyntax)
		}
		sb.WriteRune(rune(v))
	default:
		l.pos--
		r, size := utf8.DecodeRuneInString(src[l.pos:])
		sb.WriteRune(r)
		l.pos += size
	}
	return nil
}

// template reads a template literal; substitutions are tokenized so the
// parser can evaluate them.
func (l *lexer) template() (token, error) {
	src := l.src
	l.pos++
	t := token{kind: tTemplate}
	var sb strings.Builder
	for {
		if l.pos >= len(src) {
			return token{}, fmt.Errorf("%w: unterminated template literal", errJSSyntax)
		}
		c := src[l.pos]
		switch {
		case c == '`':
			l.pos++
			t.parts = append(t.parts, sb.String())
			t.val = strings.Join(t.parts, "")
			return t, nil
		case c == '\\':
			if err := l.escape(&sb); err != nil {
				return token{}, err
			}
		case c == '$' && l.pos+1 < len(src) && src[l.pos+1] == '{':
			l.pos += 2
			t.parts = append(t.parts, sb.String())
			sb.Reset()
			saved := l.prev
			l.prev = nil
			expr, err := l.until(true)
			if err != nil {
				return token{}, err
			}
			l.prev = saved
			expr = append(expr, token{kind: tEOF})
			t.exprs = append(t.exprs, expr)
		default:
			sb.WriteByte(c)
			l.pos++
		}
	}
}
