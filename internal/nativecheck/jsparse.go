package nativecheck

import (
	"fmt"
	"path"
	"strings"
)

// A careful reader of react-native.config.js. It parses a whole file (the
// expression grammar, and statements well enough to step over them) and
// evaluates the object-literal subset: strings, numbers, booleans, null,
// undefined, objects, arrays, template literals, string concatenation,
// __dirname and path.join/path.resolve. Everything else (calls, conditions,
// spreads, getters) evaluates to an unknown value that remembers what it
// was. A question about the config is answered with certainty only when
// the answer does not depend on anything unknown; otherwise the caller
// counts the package as native.
//
// Soundness rules (why an answer can be trusted):
//   - Only the value assigned by the last statement, `module.exports = …` or
//     `export default …`, is read; any statement after it could change it,
//     so the whole file is then not understood.
//   - An identifier bound by const/let/var is followed only when no code
//     that the reader cannot evaluate runs anywhere in the file (such code
//     could mutate or reassign the binding); require() of another module
//     cannot reach this file's bindings and does not count.
//   - An object with a spread, a computed key or __proto__ is "open": any
//     key looked up in it is unknown.

type jsKind uint8

const (
	jsUnknown jsKind = iota
	jsUndefined
	jsNull
	jsBool
	jsNumber
	jsString
	jsObject
	jsArray
	jsFunc
	jsRef      // a binding, dereferenced when the file turns out pure
	jsPathMod  // require('path')
	jsPathFunc // path.join or path.resolve
)

type jsValue struct {
	kind jsKind
	str  string // string value; for jsPathFunc "join"/"resolve"
	obj  *jsObj
	arr  []jsValue
	ref  string // jsRef: binding name
	why  string // jsUnknown: what it was
}

type jsObj struct {
	keys []string
	vals map[string]jsValue
	open string // why lookups are unknown ("" if closed)
}

func unknown(why string) jsValue { return jsValue{kind: jsUnknown, why: why} }

// dirnameMark stands for the package directory in evaluated paths.
const dirnameMark = "\x00pkg"

type jsParser struct {
	toks     []token
	i        int
	depth    int
	noExec   int // > 0 while parsing code that is not run (function bodies)
	bindings map[string]jsValue
	impure   string // the first code that could not be evaluated, if any
	exports  *jsValue
	after    string // the first statement after the exports assignment
	err      error
}

type jsParseError struct{ msg string }

func (e jsParseError) Error() string { return e.msg }

func (p *jsParser) fail(format string, a ...any) {
	panic(jsParseError{fmt.Sprintf(format, a...)})
}

func (p *jsParser) peek() token { return p.toks[p.i] }

func (p *jsParser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return token{kind: tEOF}
}

func (p *jsParser) advance() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *jsParser) isPunct(v string) bool {
	t := p.peek()
	return t.kind == tPunct && t.val == v
}

func (p *jsParser) isIdent(v string) bool {
	t := p.peek()
	return t.kind == tIdent && t.val == v
}

func (p *jsParser) expect(v string) {
	if !p.isPunct(v) {
		p.fail("expected %q, found %s", v, describeTok(p.peek()))
	}
	p.advance()
}

func describeTok(t token) string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tString:
		return "a string"
	case tTemplate:
		return "a template literal"
	case tNumber:
		return "a number"
	case tRegex:
		return "a regular expression"
	}
	return fmt.Sprintf("%q", t.val)
}

// effect notes code the reader cannot evaluate that would run.
func (p *jsParser) effect(what string) {
	if p.noExec == 0 && p.impure == "" {
		p.impure = what
	}
}

func (p *jsParser) enter() {
	p.depth++
	if p.depth > 200 {
		p.fail("nesting is deeper than 200")
	}
}

func (p *jsParser) leave() { p.depth-- }

// parseJSConfig parses a whole file and returns the exported value.
func parseJSConfig(src []byte) (val jsValue, pure bool, err error) {
	toks, err := lexJS(string(src))
	if err != nil {
		return jsValue{}, false, err
	}
	p := &jsParser{toks: toks, bindings: map[string]jsValue{}}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(jsParseError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: %s", errJSSyntax, pe.msg)
		}
	}()
	for p.peek().kind != tEOF {
		p.statement(true)
	}
	if p.after != "" {
		return jsValue{}, false, fmt.Errorf("code after module.exports may change it (%s)", p.after)
	}
	if p.exports == nil {
		if p.impure != "" {
			return jsValue{}, false, fmt.Errorf("no module.exports assignment, and the file runs code (%s)", p.impure)
		}
		// cosmiconfig reads module.exports, which starts as an empty object.
		return jsValue{kind: jsObject, obj: &jsObj{vals: map[string]jsValue{}}}, true, nil
	}
	v := *p.exports
	if p.impure != "" {
		v = p.untrust(v, 0)
	} else {
		v = p.deref(v, 0)
	}
	return v, p.impure == "", nil
}

// deref resolves bindings in a value of a pure file.
func (p *jsParser) deref(v jsValue, depth int) jsValue {
	if depth > 50 {
		return unknown("a value nested too deeply")
	}
	switch v.kind {
	case jsRef:
		b, ok := p.bindings[v.ref]
		if !ok {
			return unknown("identifier " + v.ref)
		}
		return p.deref(b, depth+1)
	case jsObject:
		o := &jsObj{keys: v.obj.keys, vals: make(map[string]jsValue, len(v.obj.vals)), open: v.obj.open}
		for k, vv := range v.obj.vals {
			o.vals[k] = p.deref(vv, depth+1)
		}
		return jsValue{kind: jsObject, obj: o}
	case jsArray:
		a := make([]jsValue, len(v.arr))
		for i, e := range v.arr {
			a[i] = p.deref(e, depth+1)
		}
		return jsValue{kind: jsArray, arr: a}
	}
	return v
}

// untrust replaces bindings by unknowns: code the reader could not evaluate
// ran, and it may have changed them.
func (p *jsParser) untrust(v jsValue, depth int) jsValue {
	if depth > 50 {
		return unknown("a value nested too deeply")
	}
	switch v.kind {
	case jsRef:
		return unknown(fmt.Sprintf("identifier %s (the file runs %s, which may change it)", v.ref, p.impure))
	case jsObject:
		o := &jsObj{keys: v.obj.keys, vals: make(map[string]jsValue, len(v.obj.vals)), open: v.obj.open}
		for k, vv := range v.obj.vals {
			o.vals[k] = p.untrust(vv, depth+1)
		}
		return jsValue{kind: jsObject, obj: o}
	case jsArray:
		a := make([]jsValue, len(v.arr))
		for i, e := range v.arr {
			a[i] = p.untrust(e, depth+1)
		}
		return jsValue{kind: jsArray, arr: a}
	}
	return v
}

// endStatement consumes a statement terminator (or accepts automatic
// semicolon insertion before a line break, '}' or the end).
func (p *jsParser) endStatement() {
	t := p.peek()
	switch {
	case t.kind == tPunct && t.val == ";":
		p.advance()
	case t.kind == tEOF, t.nl, t.kind == tPunct && t.val == "}":
	default:
		p.fail("expected end of statement, found %s", describeTok(t))
	}
}

func (p *jsParser) noteAfter(what string) {
	if p.exports != nil && p.after == "" && p.noExec == 0 {
		p.after = what
	}
}

// statement parses one statement. top is true at the top level of the file.
func (p *jsParser) statement(top bool) {
	p.enter()
	defer p.leave()
	t := p.peek()
	if t.kind == tPunct {
		switch t.val {
		case ";":
			p.advance()
			return
		case "{":
			p.noteAfter("a block")
			p.effect("a block statement")
			p.block()
			return
		}
	}
	if t.kind == tIdent {
		switch t.val {
		case "import":
			if nt := p.peekAt(1); !(nt.kind == tPunct && (nt.val == "(" || nt.val == ".")) {
				p.importDecl()
				return
			}
		case "export":
			p.advance()
			if p.isIdent("default") {
				p.advance()
				p.noteAfter("another export")
				v := p.assign()
				p.skipTypeSuffix()
				if top {
					p.exports = &v
				}
				p.endStatement()
				return
			}
			if p.isPunct("{") || p.isPunct("*") {
				p.skipBalancedUntilEnd()
				return
			}
			p.statement(top)
			return
		case "const", "let", "var":
			if nt := p.peekAt(1); nt.kind == tIdent || (nt.kind == tPunct && (nt.val == "{" || nt.val == "[")) {
				p.advance()
				p.noteAfter("a declaration")
				p.declarations(t.val)
				p.endStatement()
				return
			}
		case "function":
			p.advance()
			p.functionRest()
			return
		case "async":
			if nt := p.peekAt(1); nt.kind == tIdent && nt.val == "function" && !nt.nl {
				p.advance()
				p.advance()
				p.functionRest()
				return
			}
		case "class":
			p.noteAfter("a class")
			p.effect("a class declaration")
			p.advance()
			p.classRest()
			return
		case "if":
			p.noteAfter("an if statement")
			p.effect("an if statement")
			p.advance()
			p.parens()
			p.statement(false)
			if p.isIdent("else") {
				p.advance()
				p.statement(false)
			}
			return
		case "for", "while", "with", "switch":
			p.noteAfter("a " + t.val + " statement")
			p.effect("a " + t.val + " statement")
			p.advance()
			if p.isIdent("await") {
				p.advance()
			}
			p.parens()
			if t.val == "switch" {
				p.block()
				return
			}
			p.statement(false)
			return
		case "do":
			p.noteAfter("a do statement")
			p.effect("a do statement")
			p.advance()
			p.statement(false)
			if !p.isIdent("while") {
				p.fail("expected while after do")
			}
			p.advance()
			p.parens()
			if p.isPunct(";") {
				p.advance()
			}
			return
		case "try":
			p.noteAfter("a try statement")
			p.effect("a try statement")
			p.advance()
			p.block()
			if p.isIdent("catch") {
				p.advance()
				if p.isPunct("(") {
					p.parens()
				}
				p.block()
			}
			if p.isIdent("finally") {
				p.advance()
				p.block()
			}
			return
		case "return", "throw":
			p.noteAfter("a " + t.val + " statement")
			p.effect("a " + t.val + " statement")
			p.advance()
			if !p.peek().nl && !p.isPunct(";") && !p.isPunct("}") && p.peek().kind != tEOF {
				p.expression()
			}
			p.endStatement()
			return
		case "break", "continue", "debugger":
			p.advance()
			if p.peek().kind == tIdent && !p.peek().nl {
				p.advance()
			}
			p.endStatement()
			return
		case "interface":
			if p.peekAt(1).kind == tIdent {
				p.advance()
				p.advance()
				for !p.isPunct("{") {
					if p.peek().kind == tEOF {
						p.fail("unterminated interface")
					}
					p.advance()
				}
				p.block()
				return
			}
		case "type":
			if nt := p.peekAt(1); nt.kind == tIdent && !nt.nl {
				p.advance()
				p.advance()
				p.skipType(true)
				p.endStatement()
				return
			}
		}
		if nt := p.peekAt(1); nt.kind == tPunct && nt.val == ":" && t.kind == tIdent {
			p.advance()
			p.advance()
			p.statement(false) // labelled statement
			return
		}
	}
	// An expression statement.
	if p.exports != nil {
		p.noteAfter("an expression statement")
	}
	if t.kind == tString && (p.peekAt(1).nl || p.peekAt(1).kind == tEOF || (p.peekAt(1).kind == tPunct && p.peekAt(1).val == ";")) {
		p.advance() // a directive such as 'use strict'
		p.endStatement()
		return
	}
	p.expressionStatement(top)
	p.endStatement()
}

// expressionStatement recognises `module.exports = …`.
func (p *jsParser) expressionStatement(top bool) {
	if top && p.isIdent("module") && p.peekAt(1).kind == tPunct && p.peekAt(1).val == "." &&
		p.peekAt(2).kind == tIdent && p.peekAt(2).val == "exports" && p.peekAt(3).kind == tPunct && p.peekAt(3).val == "=" {
		p.i += 4
		v := p.assign()
		p.skipTypeSuffix()
		if p.isPunct(",") {
			p.advance()
			p.expression()
			p.effect("a comma expression")
		}
		p.exports = &v
		return
	}
	p.expression()
}

func (p *jsParser) importDecl() {
	p.advance()
	for {
		t := p.peek()
		if t.kind == tString {
			p.advance()
			break
		}
		if t.kind == tEOF || (t.kind == tPunct && t.val == ";") {
			p.fail("malformed import")
		}
		if t.kind == tPunct && t.val == "{" {
			p.skipBalanced()
			continue
		}
		p.advance()
	}
	if p.isIdent("with") || p.isIdent("assert") {
		p.advance()
		p.skipBalanced()
	}
	p.endStatement()
}

func (p *jsParser) declarations(kind string) {
	for {
		t := p.peek()
		var name string
		var pattern []string
		switch {
		case t.kind == tIdent:
			name = t.val
			p.advance()
		case t.kind == tPunct && t.val == "{":
			pattern = p.objectPattern()
		case t.kind == tPunct && t.val == "[":
			p.skipBalanced()
			pattern = []string{}
		default:
			p.fail("expected a binding name, found %s", describeTok(t))
		}
		if p.isPunct("!") {
			p.advance()
		}
		if p.isPunct(":") { // TypeScript annotation
			p.advance()
			p.skipType(false)
		}
		var v = jsValue{kind: jsUndefined}
		if p.isPunct("=") {
			p.advance()
			v = p.assign()
			p.skipTypeSuffix()
		}
		if kind != "const" && (v.kind == jsPathMod || v.kind == jsPathFunc) {
			v = unknown("identifier " + name + " (a " + kind + " binding, which may be reassigned)")
		}
		switch {
		case name != "":
			p.bindings[name] = v
		case pattern != nil:
			for _, n := range pattern {
				switch {
				case v.kind == jsPathMod && (n == "join" || n == "resolve"):
					p.bindings[n] = jsValue{kind: jsPathFunc, str: n}
				default:
					p.bindings[n] = unknown("identifier " + n + " (destructured)")
				}
			}
		}
		if !p.isPunct(",") {
			return
		}
		p.advance()
	}
}

// objectPattern reads `{ a, b: c, ...d }` and returns the bound names of
// the simple entries (a and c; the rest are unknown).
func (p *jsParser) objectPattern() []string {
	p.expect("{")
	var names []string
	for !p.isPunct("}") {
		t := p.advance()
		switch {
		case t.kind == tPunct && t.val == "...":
			if p.peek().kind == tIdent {
				names = append(names, p.advance().val)
			}
		case t.kind == tIdent || t.kind == tString:
			if p.isPunct(":") {
				p.advance()
				if p.peek().kind == tIdent {
					n := p.advance().val
					names = append(names, "\x00"+n) // renamed: not the path function of that name
				} else {
					p.skipBalanced()
				}
			} else if t.kind == tIdent {
				names = append(names, t.val)
			}
			if p.isPunct("=") {
				p.advance()
				p.assign()
			}
		default:
			p.fail("unsupported destructuring pattern")
		}
		if p.isPunct(",") {
			p.advance()
		} else if !p.isPunct("}") {
			p.fail("unsupported destructuring pattern")
		}
	}
	p.advance()
	for i, n := range names {
		names[i] = strings.TrimPrefix(n, "\x00")
	}
	return names
}

func (p *jsParser) functionRest() {
	if p.isPunct("*") {
		p.advance()
	}
	if p.peek().kind == tIdent {
		p.advance()
	}
	p.parens()
	if p.isPunct(":") {
		p.advance()
		p.skipType(false)
	}
	p.block()
}

func (p *jsParser) classRest() {
	if p.peek().kind == tIdent && p.peek().val != "extends" {
		p.advance()
	}
	for !p.isPunct("{") {
		if p.peek().kind == tEOF {
			p.fail("unterminated class")
		}
		if p.isPunct("(") || p.isPunct("[") {
			p.skipBalanced()
			continue
		}
		p.advance()
	}
	p.block()
}

// block skips a balanced {…}.
func (p *jsParser) block() {
	if !p.isPunct("{") {
		p.fail("expected a block, found %s", describeTok(p.peek()))
	}
	p.skipBalanced()
}

func (p *jsParser) parens() {
	if !p.isPunct("(") {
		p.fail("expected '(', found %s", describeTok(p.peek()))
	}
	p.skipBalanced()
}

// skipBalanced skips one bracketed group starting at the current token.
func (p *jsParser) skipBalanced() {
	open := p.advance()
	closeFor := map[string]string{"{": "}", "(": ")", "[": "]"}
	want := []string{closeFor[open.val]}
	if want[0] == "" {
		return
	}
	for len(want) > 0 {
		t := p.advance()
		switch {
		case t.kind == tEOF:
			p.fail("unbalanced %q", open.val)
		case t.kind == tTemplate && len(t.exprs) > 0:
			// substitutions were tokenized separately: nothing to balance
		case t.kind == tPunct:
			if c, ok := closeFor[t.val]; ok {
				want = append(want, c)
			} else if t.val == want[len(want)-1] {
				want = want[:len(want)-1]
			} else if t.val == "}" || t.val == ")" || t.val == "]" {
				p.fail("unbalanced %q", t.val)
			}
		}
	}
}

// skipBalancedUntilEnd skips an export list or re-export.
func (p *jsParser) skipBalancedUntilEnd() {
	for {
		t := p.peek()
		if t.kind == tEOF || (t.kind == tPunct && t.val == ";") || (t.nl && p.i > 0) {
			break
		}
		if t.kind == tPunct && t.val == "{" {
			p.skipBalanced()
			continue
		}
		p.advance()
	}
	p.endStatement()
}

// skipType steps over a TypeScript type. alias is true for `type X = …`,
// where generic parameters and '=' come first.
func (p *jsParser) skipType(alias bool) {
	if alias {
		if p.isPunct("<") {
			p.skipAngles()
		}
		p.expect("=")
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tEOF:
			return
		case t.kind == tPunct && (t.val == "{" || t.val == "(" || t.val == "["):
			p.skipBalanced()
		case t.kind == tPunct && t.val == "<":
			p.skipAngles()
		case t.kind == tPunct && (t.val == "|" || t.val == "&" || t.val == "." || t.val == "=>" || t.val == "?"):
			p.advance()
		case t.kind == tIdent || t.kind == tString || t.kind == tNumber:
			p.advance()
			if nt := p.peek(); nt.nl || nt.kind == tIdent && nt.val != "is" && nt.val != "keyof" && nt.val != "typeof" && nt.val != "extends" {
				return
			}
		default:
			return
		}
	}
}

func (p *jsParser) skipAngles() {
	depth := 0
	for {
		t := p.advance()
		switch {
		case t.kind == tEOF:
			p.fail("unbalanced '<'")
		case t.kind == tPunct && t.val == "<":
			depth++
		case t.kind == tPunct && t.val == ">":
			depth--
		case t.kind == tPunct && t.val == ">>":
			depth -= 2
		case t.kind == tPunct && (t.val == "{" || t.val == "(" || t.val == "["):
			p.i--
			p.skipBalanced()
		}
		if depth <= 0 {
			return
		}
	}
}

// skipTypeSuffix steps over `as T`, `satisfies T` and `as const`.
func (p *jsParser) skipTypeSuffix() {
	for (p.isIdent("as") || p.isIdent("satisfies")) && !p.peek().nl {
		p.advance()
		p.skipType(false)
	}
}

// expression parses a comma expression.
func (p *jsParser) expression() jsValue {
	v := p.assign()
	for p.isPunct(",") {
		p.advance()
		v = p.assign()
	}
	return v
}

var assignOps = map[string]bool{
	"=": true, "+=": true, "-=": true, "*=": true, "/=": true, "%=": true, "**=": true,
	"<<=": true, ">>=": true, ">>>=": true, "&=": true, "|=": true, "^=": true,
	"&&=": true, "||=": true, "??=": true,
}

// assign parses an assignment expression (arrow functions included).
func (p *jsParser) assign() jsValue {
	p.enter()
	defer p.leave()
	if p.arrowAhead() {
		return p.arrow()
	}
	if p.isIdent("yield") {
		p.advance()
		p.effect("yield")
		if !p.peek().nl && !p.isPunct(")") && !p.isPunct("]") && !p.isPunct("}") && !p.isPunct(",") && !p.isPunct(";") {
			p.assign()
		}
		return unknown("a yield expression")
	}
	left := p.conditional()
	if t := p.peek(); t.kind == tPunct && assignOps[t.val] {
		p.advance()
		p.assign()
		p.effect("an assignment")
		return unknown("an assignment")
	}
	return left
}

// arrowAhead reports whether an arrow function starts here.
func (p *jsParser) arrowAhead() bool {
	j := p.i
	if p.toks[j].kind == tIdent && p.toks[j].val == "async" && j+1 < len(p.toks) && !p.toks[j+1].nl &&
		(p.toks[j+1].kind == tIdent || p.toks[j+1].kind == tPunct && p.toks[j+1].val == "(") {
		j++
	}
	t := p.toks[j]
	if t.kind == tIdent {
		return j+1 < len(p.toks) && p.toks[j+1].kind == tPunct && p.toks[j+1].val == "=>"
	}
	if t.kind != tPunct || t.val != "(" {
		return false
	}
	depth := 0
	for ; j < len(p.toks); j++ {
		tk := p.toks[j]
		if tk.kind == tEOF {
			return false
		}
		if tk.kind != tPunct {
			continue
		}
		switch tk.val {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if j+1 >= len(p.toks) {
		return false
	}
	n := p.toks[j+1]
	if n.kind == tPunct && n.val == ":" { // (a): T => …
		return true
	}
	return n.kind == tPunct && n.val == "=>"
}

func (p *jsParser) arrow() jsValue {
	if p.isIdent("async") {
		p.advance()
	}
	if p.peek().kind == tIdent {
		p.advance()
	} else {
		p.parens()
		if p.isPunct(":") {
			p.advance()
			p.skipType(false)
		}
	}
	p.expect("=>")
	p.noExec++
	if p.isPunct("{") {
		p.block()
	} else {
		p.assign()
	}
	p.noExec--
	return jsValue{kind: jsFunc}
}

func (p *jsParser) conditional() jsValue {
	test := p.binary(0)
	if !p.isPunct("?") {
		return test
	}
	p.advance()
	a := p.assign()
	p.expect(":")
	b := p.assign()
	if t, ok := truthy(test); ok {
		if t {
			return a
		}
		return b
	}
	return unknown("a conditional expression (" + test.describe() + " ? … : …)")
}

var binPrec = map[string]int{
	"??": 1, "||": 2, "&&": 3, "|": 4, "^": 5, "&": 6,
	"==": 7, "!=": 7, "===": 7, "!==": 7,
	"<": 8, ">": 8, "<=": 8, ">=": 8, "instanceof": 8, "in": 8,
	"<<": 9, ">>": 9, ">>>": 9, "+": 10, "-": 10, "*": 11, "/": 11, "%": 11, "**": 12,
}

func (p *jsParser) binary(minPrec int) jsValue {
	left := p.unary()
	for {
		t := p.peek()
		if t.kind != tPunct && !(t.kind == tIdent && (t.val == "instanceof" || t.val == "in")) {
			return left
		}
		if t.kind == tIdent && (t.val == "as" || t.val == "satisfies") {
			return left
		}
		prec, ok := binPrec[t.val]
		if !ok || prec <= minPrec && !(t.val == "**" && prec == minPrec) {
			return left
		}
		p.advance()
		right := p.binary(prec)
		left = binop(t.val, left, right)
	}
}

func binop(op string, a, b jsValue) jsValue {
	switch op {
	case "+":
		if as, ok := a.stringy(); ok {
			if bs, ok := b.stringy(); ok {
				return jsValue{kind: jsString, str: as + bs}
			}
		}
	case "||":
		if t, ok := truthy(a); ok {
			if t {
				return a
			}
			return b
		}
	case "&&":
		if t, ok := truthy(a); ok {
			if !t {
				return a
			}
			return b
		}
	case "??":
		switch a.kind {
		case jsNull, jsUndefined:
			return b
		case jsUnknown, jsRef:
		default:
			return a
		}
	}
	return unknown("an expression (" + a.describe() + " " + op + " " + b.describe() + ")")
}

// stringy returns a value as a string operand of '+'.
func (v jsValue) stringy() (string, bool) {
	switch v.kind {
	case jsString:
		return v.str, true
	}
	return "", false
}

func truthy(v jsValue) (bool, bool) {
	switch v.kind {
	case jsUndefined, jsNull:
		return false, true
	case jsBool:
		return v.str == "true", true
	case jsString:
		return v.str != "", true
	case jsObject, jsArray, jsFunc, jsPathMod, jsPathFunc:
		return true, true
	}
	return false, false
}

func (p *jsParser) unary() jsValue {
	t := p.peek()
	if t.kind == tPunct {
		switch t.val {
		case "!", "-", "+", "~":
			p.advance()
			v := p.unary()
			if t.val == "!" {
				if b, ok := truthy(v); ok {
					return jsValue{kind: jsBool, str: fmt.Sprint(!b)}
				}
			}
			return unknown("a unary expression")
		case "++", "--":
			p.advance()
			p.unary()
			p.effect("an increment")
			return unknown("an increment")
		case "<":
			p.fail("JSX or type assertions are not supported")
		}
	}
	if t.kind == tIdent {
		switch t.val {
		case "typeof", "void":
			p.advance()
			p.unary()
			return unknown("a " + t.val + " expression")
		case "delete":
			p.advance()
			p.unary()
			p.effect("delete")
			return unknown("a delete expression")
		case "await":
			p.advance()
			p.unary()
			p.effect("await")
			return unknown("an await expression")
		}
	}
	v := p.postfix()
	if t := p.peek(); t.kind == tPunct && (t.val == "++" || t.val == "--") && !t.nl {
		p.advance()
		p.effect("an increment")
		return unknown("an increment")
	}
	return v
}

func (p *jsParser) postfix() jsValue {
	var v jsValue
	var desc string
	if p.isIdent("new") {
		p.advance()
		if p.isPunct(".") { // new.target
			p.advance()
			p.advance()
			v = unknown("new.target")
		} else {
			p.enter()
			p.memberOnly()
			p.leave()
			if p.isPunct("(") {
				p.arguments()
			}
			p.effect("a constructor call")
			v = unknown("a new expression")
		}
	} else {
		v, desc = p.primary()
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tPunct && (t.val == "." || t.val == "?."):
			p.advance()
			if t.val == "?." && (p.isPunct("(") || p.isPunct("[")) {
				continue
			}
			name := p.advance()
			if name.kind != tIdent && !(name.kind == tPunct && name.val == "#") {
				p.fail("expected a property name after %q", t.val)
			}
			if name.kind == tPunct {
				p.advance()
			}
			v = v.member(name.val)
			desc += "." + name.val
		case t.kind == tPunct && t.val == "[":
			p.advance()
			k := p.expression()
			p.expect("]")
			if ks, ok := k.stringy(); ok {
				v = v.member(ks)
			} else {
				v = unknown("a computed member access")
			}
			desc += "[…]"
		case t.kind == tPunct && t.val == "(":
			args := p.arguments()
			v = p.call(v, desc, args)
			desc += "(…)"
		case t.kind == tTemplate && !t.nl:
			p.advance()
			p.effect("a tagged template")
			v = unknown("a tagged template")
		case t.kind == tPunct && t.val == "!" && !t.nl && p.nonNullAhead():
			p.advance() // TypeScript non-null assertion
		default:
			return v
		}
	}
}

// nonNullAhead tells a TypeScript `x!` from `x != y`.
func (p *jsParser) nonNullAhead() bool {
	n := p.peekAt(1)
	return n.kind == tPunct && (n.val == "." || n.val == ")" || n.val == "," || n.val == ";" || n.val == "]" || n.val == "}") || n.kind == tEOF
}

// memberOnly parses the callee of `new` (no call).
func (p *jsParser) memberOnly() {
	p.primary()
	for p.isPunct(".") || p.isPunct("[") {
		if p.isPunct(".") {
			p.advance()
			p.advance()
		} else {
			p.skipBalanced()
		}
	}
}

func (p *jsParser) arguments() []jsValue {
	p.expect("(")
	var args []jsValue
	for !p.isPunct(")") {
		if p.isPunct("...") {
			p.advance()
			p.assign()
			args = append(args, unknown("a spread argument"))
		} else {
			args = append(args, p.assign())
		}
		if p.isPunct(",") {
			p.advance()
		} else if !p.isPunct(")") {
			p.fail("expected ',' or ')' in arguments, found %s", describeTok(p.peek()))
		}
	}
	p.advance()
	return args
}

// call evaluates the calls the reader knows: require('path'),
// path.join(...), path.resolve(__dirname, ...). Other calls run code.
func (p *jsParser) call(callee jsValue, desc string, args []jsValue) jsValue {
	if desc == "require" && len(args) == 1 && args[0].kind == jsString {
		// require() runs another module, which cannot reach this file's
		// bindings; its result is unknown unless it is Node's path module.
		switch args[0].str {
		case "path", "node:path":
			if _, shadowed := p.bindings["require"]; !shadowed {
				return jsValue{kind: jsPathMod}
			}
		}
		return unknown("require('" + args[0].str + "')")
	}
	if callee.kind == jsPathFunc {
		parts := make([]string, 0, len(args))
		for i, a := range args {
			s, ok := a.stringy()
			if !ok {
				return unknown("path." + callee.str + "(…) with an argument that is " + a.describe())
			}
			if callee.str == "resolve" && i == 0 && !strings.HasPrefix(s, dirnameMark) && !strings.HasPrefix(s, "/") {
				return unknown("path.resolve(…) relative to the working directory")
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return unknown("path." + callee.str + "()")
		}
		if callee.str == "resolve" {
			for i := len(parts) - 1; i > 0; i-- {
				if strings.HasPrefix(parts[i], "/") || strings.HasPrefix(parts[i], dirnameMark) {
					parts = parts[i:]
					break
				}
			}
		}
		return jsValue{kind: jsString, str: path.Join(parts...)}
	}
	p.effect("a call to " + orDesc(desc, "a function"))
	return unknown("a call to " + orDesc(desc, "a function"))
}

func orDesc(d, alt string) string {
	if d == "" {
		return alt
	}
	return d
}

func (p *jsParser) primary() (jsValue, string) {
	p.enter()
	defer p.leave()
	t := p.advance()
	switch t.kind {
	case tString:
		return jsValue{kind: jsString, str: t.val}, ""
	case tNumber:
		return jsValue{kind: jsNumber, str: t.val}, ""
	case tRegex:
		return unknown("a regular expression"), ""
	case tTemplate:
		if len(t.exprs) == 0 {
			return jsValue{kind: jsString, str: t.val}, ""
		}
		var sb strings.Builder
		known := true
		for i, part := range t.parts {
			sb.WriteString(part)
			if i < len(t.exprs) {
				sub := &jsParser{toks: t.exprs[i], bindings: p.bindings, noExec: p.noExec, depth: p.depth}
				v := sub.expression()
				if sub.peek().kind != tEOF {
					p.fail("unexpected %s in a template substitution", describeTok(sub.peek()))
				}
				if sub.impure != "" {
					p.effect(sub.impure)
				}
				if s, ok := v.stringy(); ok {
					sb.WriteString(s)
				} else {
					known = false
				}
			}
		}
		if !known {
			return unknown("a template literal with substitutions"), ""
		}
		return jsValue{kind: jsString, str: sb.String()}, ""
	case tPunct:
		switch t.val {
		case "(":
			v := p.expression()
			p.skipTypeSuffix()
			p.expect(")")
			return v, ""
		case "[":
			return p.arrayLiteral(), ""
		case "{":
			return p.objectLiteral(), ""
		}
	case tIdent:
		switch t.val {
		case "true", "false":
			return jsValue{kind: jsBool, str: t.val}, ""
		case "null":
			return jsValue{kind: jsNull}, ""
		case "undefined":
			if _, shadowed := p.bindings["undefined"]; !shadowed {
				return jsValue{kind: jsUndefined}, ""
			}
		case "__dirname":
			if _, shadowed := p.bindings["__dirname"]; !shadowed {
				return jsValue{kind: jsString, str: dirnameMark}, "__dirname"
			}
		case "this", "super", "arguments":
			return unknown(t.val), t.val
		case "function":
			p.noExec++
			p.functionRest()
			p.noExec--
			return jsValue{kind: jsFunc}, ""
		case "async":
			if p.isIdent("function") && !p.peek().nl {
				p.advance()
				p.noExec++
				p.functionRest()
				p.noExec--
				return jsValue{kind: jsFunc}, ""
			}
		case "class":
			p.effect("a class expression")
			p.classRest()
			return unknown("a class"), ""
		case "import":
			if p.isPunct("(") {
				p.arguments()
				p.effect("a dynamic import")
				return unknown("a dynamic import"), "import"
			}
			if p.isPunct(".") {
				p.advance()
				p.advance()
				return unknown("import.meta"), "import.meta"
			}
		}
		if b, ok := p.bindings[t.val]; ok && (b.kind == jsPathMod || b.kind == jsPathFunc) {
			return b, t.val
		}
		if _, ok := p.bindings[t.val]; ok {
			return jsValue{kind: jsRef, ref: t.val}, t.val
		}
		return unknown("identifier " + t.val), t.val
	}
	p.fail("unexpected %s", describeTok(t))
	return jsValue{}, ""
}

func (p *jsParser) arrayLiteral() jsValue {
	var out []jsValue
	for !p.isPunct("]") {
		if p.isPunct(",") {
			p.advance()
			out = append(out, jsValue{kind: jsUndefined})
			continue
		}
		if p.isPunct("...") {
			p.advance()
			p.assign()
			out = append(out, unknown("a spread element"))
		} else {
			out = append(out, p.assign())
		}
		if p.isPunct(",") {
			p.advance()
		} else if !p.isPunct("]") {
			p.fail("expected ',' or ']' in an array, found %s", describeTok(p.peek()))
		}
	}
	p.advance()
	return jsValue{kind: jsArray, arr: out}
}

func (p *jsParser) objectLiteral() jsValue {
	o := &jsObj{vals: map[string]jsValue{}}
	set := func(k string, v jsValue) {
		if _, ok := o.vals[k]; !ok {
			o.keys = append(o.keys, k)
		}
		o.vals[k] = v
	}
	for !p.isPunct("}") {
		t := p.peek()
		switch {
		case t.kind == tPunct && t.val == "...":
			p.advance()
			v := p.assign()
			if o.open == "" {
				o.open = "it spreads " + v.describe()
			}
		case t.kind == tPunct && t.val == "[":
			p.skipBalanced()
			p.propertyValue()
			if o.open == "" {
				o.open = "it has a computed key"
			}
		case t.kind == tPunct && t.val == "*":
			p.advance()
			p.propertyKey()
			p.methodRest()
		case t.kind == tIdent || t.kind == tString || t.kind == tNumber:
			key := p.propertyKey()
			nt := p.peek()
			isAccessor := (key == "get" || key == "set" || key == "async") && t.kind == tIdent &&
				(nt.kind == tIdent || nt.kind == tString || nt.kind == tNumber || nt.kind == tPunct && (nt.val == "[" || nt.val == "*"))
			switch {
			case isAccessor:
				if p.isPunct("*") {
					p.advance()
				}
				var name string
				if p.isPunct("[") {
					p.skipBalanced()
					if o.open == "" {
						o.open = "it has a computed key"
					}
				} else {
					name = p.propertyKey()
				}
				p.methodRest()
				if name != "" {
					if key == "async" {
						set(name, jsValue{kind: jsFunc})
					} else {
						set(name, unknown("a "+key+"ter"))
					}
				}
			case nt.kind == tPunct && nt.val == ":":
				p.advance()
				v := p.assign()
				if key == "__proto__" {
					if o.open == "" {
						o.open = "it sets __proto__"
					}
				} else {
					set(key, v)
				}
			case nt.kind == tPunct && (nt.val == "(" || nt.val == "<"):
				p.methodRest()
				set(key, jsValue{kind: jsFunc})
			case t.kind == tIdent && nt.kind == tPunct && (nt.val == "," || nt.val == "}"):
				// shorthand property
				switch {
				case key == "undefined":
					set(key, jsValue{kind: jsUndefined})
				case key == "__dirname":
					set(key, jsValue{kind: jsString, str: dirnameMark})
				default:
					if b, ok := p.bindings[key]; ok && (b.kind == jsPathMod || b.kind == jsPathFunc) {
						set(key, b)
					} else if _, ok := p.bindings[key]; ok {
						set(key, jsValue{kind: jsRef, ref: key})
					} else {
						set(key, unknown("identifier "+key))
					}
				}
			default:
				p.fail("unexpected %s in an object literal", describeTok(nt))
			}
		default:
			p.fail("unexpected %s in an object literal", describeTok(t))
		}
		if p.isPunct(",") {
			p.advance()
		} else if !p.isPunct("}") {
			p.fail("expected ',' or '}' in an object literal, found %s", describeTok(p.peek()))
		}
	}
	p.advance()
	return jsValue{kind: jsObject, obj: o}
}

func (p *jsParser) propertyKey() string {
	t := p.advance()
	switch t.kind {
	case tIdent, tString, tNumber:
		return t.val
	}
	p.fail("expected a property name, found %s", describeTok(t))
	return ""
}

func (p *jsParser) propertyValue() {
	if p.isPunct(":") {
		p.advance()
		p.assign()
		return
	}
	p.methodRest()
}

func (p *jsParser) methodRest() {
	if p.isPunct("<") {
		p.skipAngles()
	}
	p.noExec++
	p.parens()
	if p.isPunct(":") {
		p.advance()
		p.skipType(false)
	}
	p.block()
	p.noExec--
}

// member reads property k of v.
func (v jsValue) member(k string) jsValue {
	switch v.kind {
	case jsObject:
		if x, ok := v.obj.vals[k]; ok && v.obj.open == "" {
			return x
		}
		if v.obj.open != "" {
			return unknown("property " + k + " of an object whose keys are not all known (" + v.obj.open + ")")
		}
		return jsValue{kind: jsUndefined}
	case jsPathMod:
		if k == "join" || k == "resolve" {
			return jsValue{kind: jsPathFunc, str: k}
		}
		return unknown("path." + k)
	case jsString:
		if k == "length" {
			return jsValue{kind: jsNumber, str: fmt.Sprint(len(v.str))}
		}
	case jsRef:
		return unknown(v.describe() + "." + k)
	}
	return unknown("property " + k + " of " + v.describe())
}

// describe names a value for a reason.
func (v jsValue) describe() string {
	switch v.kind {
	case jsUnknown:
		return v.why
	case jsUndefined:
		return "undefined"
	case jsNull:
		return "null"
	case jsBool, jsNumber:
		return v.str
	case jsString:
		return fmt.Sprintf("%q", strings.ReplaceAll(v.str, dirnameMark, "__dirname"))
	case jsObject:
		return "an object"
	case jsArray:
		return "an array"
	case jsFunc:
		return "a function"
	case jsRef:
		return "identifier " + v.ref
	case jsPathMod:
		return "the path module"
	case jsPathFunc:
		return "path." + v.str
	}
	return "a value"
}
