package browser

import (
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// VisibleText returns the text of dom, an HTML document or fragment such as
// [DumpDOM] returns, roughly as a reader sees it, for assertions.
//
// The head, script, style, noscript and template elements and elements with
// the hidden attribute are left out; so are comments, attributes, image alt
// text and form field values. Character references are decoded. Runs of
// whitespace, no-break spaces included, become one space. Each block (a
// paragraph, heading, list item, div, table row, ...) and each <br> starts a
// new line, the cells of a table row are separated by one tab each, lines
// are trimmed and empty lines dropped. CSS is not applied: what a style
// sheet hides is still here (look at a screenshot for that), and a block
// inside a table cell breaks its row over two lines.
func VisibleText(dom string) string {
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil { // only a failing reader makes Parse fail
		return ""
	}
	w := textWriter{afterSep: true}
	w.walk(doc)
	w.endLine()
	return strings.Join(w.lines, "\n")
}

// textWriter gathers lines of visible text while walking a parsed document.
type textWriter struct {
	lines    []string
	line     strings.Builder
	cells    int  // table cells begun on this line
	space    bool // whitespace seen since the last character written
	afterSep bool // at the start of a line or cell: whitespace is dropped
}

// walk writes the visible text of n and its descendants.
func (w *textWriter) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.text(n.Data)
		return
	case html.ElementNode:
		if hidden(n) {
			return
		}
		switch {
		case n.DataAtom == atom.Br:
			w.endLine()
			return
		case n.DataAtom == atom.Td || n.DataAtom == atom.Th:
			w.cell()
		case blocks[n.DataAtom]:
			w.endLine()
		}
	case html.DocumentNode:
	default: // comments, doctypes
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
	if n.Type == html.ElementNode && blocks[n.DataAtom] {
		w.endLine()
	}
}

// text appends s with its whitespace collapsed.
func (w *textWriter) text(s string) {
	for _, r := range s {
		if unicode.IsSpace(r) {
			w.space = true
			continue
		}
		if w.space && !w.afterSep {
			w.line.WriteByte(' ')
		}
		w.space, w.afterSep = false, false
		w.line.WriteRune(r)
	}
}

// cell begins a table cell: a tab unless it is the first on the line.
func (w *textWriter) cell() {
	if w.cells > 0 {
		w.line.WriteByte('\t')
	}
	w.cells++
	w.space, w.afterSep = false, true
}

// endLine ends the current line, keeping it if it has any text.
func (w *textWriter) endLine() {
	s := strings.TrimRight(w.line.String(), " \t")
	if strings.TrimSpace(s) != "" {
		w.lines = append(w.lines, s)
	}
	w.line.Reset()
	w.cells = 0
	w.space, w.afterSep = false, true
}

// hidden reports whether element n and its contents are never shown.
func hidden(n *html.Node) bool {
	switch n.DataAtom {
	case atom.Head, atom.Script, atom.Style, atom.Noscript, atom.Template:
		return true
	}
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == "hidden" {
			return true
		}
	}
	return false
}

// blocks are the elements that begin and end a line of text.
var blocks = map[atom.Atom]bool{
	atom.Address: true, atom.Article: true, atom.Aside: true, atom.Blockquote: true,
	atom.Body: true, atom.Caption: true, atom.Dd: true, atom.Details: true,
	atom.Dialog: true, atom.Div: true, atom.Dl: true, atom.Dt: true,
	atom.Fieldset: true, atom.Figcaption: true, atom.Figure: true, atom.Footer: true,
	atom.Form: true, atom.H1: true, atom.H2: true, atom.H3: true,
	atom.H4: true, atom.H5: true, atom.H6: true, atom.Header: true,
	atom.Hgroup: true, atom.Hr: true, atom.Html: true, atom.Legend: true,
	atom.Li: true, atom.Main: true, atom.Nav: true, atom.Ol: true,
	atom.Option: true, atom.P: true, atom.Pre: true, atom.Section: true,
	atom.Summary: true, atom.Table: true, atom.Tbody: true, atom.Tfoot: true,
	atom.Thead: true, atom.Tr: true, atom.Ul: true,
}
