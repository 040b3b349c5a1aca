"""Structure checks for the HTML reports the program writes (issue 17, item 5): one self-contained file (no
scripts, no external stylesheet, image or link), balanced markup, every <img> an embedded PNG that decodes
(signature and IHDR), every inline <svg> well-formed XML with a size, and internal links pointing at ids that
exist. `check_report` returns what a test then asserts about content: the headings, the figure captions, the
table rows, the text and the parsed SVGs."""
import base64
import html.parser
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SVG_NS = "{http://www.w3.org/2000/svg}"


@dataclass
class Png:
    width: int
    height: int
    alt: str


@dataclass
class ReportContent:
    title: str = ""
    headings: list = field(default_factory=list)   # (level, text) of h1..h4 in document order
    captions: list = field(default_factory=list)   # figcaption texts in document order
    tables: list = field(default_factory=list)     # each a list of rows, each a list of cell texts
    images: list = field(default_factory=list)     # Png per <img>
    svgs: list = field(default_factory=list)       # ElementTree roots of the inline <svg> elements
    ids: set = field(default_factory=set)
    text: str = ""                                 # all text content, whitespace collapsed

    def svg_texts(self, i):
        """The text of the i-th inline SVG's <text> elements, in order."""
        return ["".join(t.itertext()) for t in self.svgs[i].iter() if t.tag in ("text", SVG_NS + "text")]


def png_size(data, what):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{what}: not a PNG"
    assert data[12:16] == b"IHDR", f"{what}: PNG without IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert w > 0 and h > 0, f"{what}: empty PNG"
    return w, h


class _Parser(html.parser.HTMLParser):
    def __init__(self, out):
        super().__init__(convert_charrefs=True)
        self.out, self.stack, self.errors, self.text = out, [], [], []
        self.cell, self.caption, self.heading, self.title = None, None, None, None
        self.links = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.out.ids.add(a["id"])
        if tag == "script":
            self.errors.append("a <script> element (reports are static)")
        if tag == "link" or (tag == "img" and not (a.get("src") or "").startswith("data:")):
            self.errors.append(f"an external resource: <{tag} {a}>")
        for key in ("src", "href"):
            v = a.get(key)
            if v is not None and tag not in ("img",) and not v.startswith(("#", "data:")):
                self.errors.append(f"an external {key}: {v!r} on <{tag}>")
            if v is not None and v.startswith("#"):
                self.links.append(v[1:])
        if tag == "img":
            src = a["src"]
            m = re.match(r"data:image/png;base64,(.*)$", src, re.S)
            if not m:
                self.errors.append(f"an <img> that is not an embedded PNG: {src[:40]!r}")
            else:
                w, h = png_size(base64.b64decode(m.group(1), validate=True), f"<img alt={a.get('alt')!r}>")
                self.out.images.append(Png(w, h, a.get("alt") or ""))
        if tag == "table":
            self.out.tables.append([])
        elif tag == "tr" and self.out.tables:
            self.out.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "figcaption":
            self.caption = []
        elif re.fullmatch(r"h[1-4]", tag):
            self.heading = (int(tag[1]), [])
        elif tag == "title":
            self.title = []
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> at line {self.getpos()[0]} closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None:
            self.out.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "figcaption":
            self.out.captions.append(" ".join("".join(self.caption).split()))
            self.caption = None
        elif re.fullmatch(r"h[1-4]", tag) and self.heading:
            self.out.headings.append((self.heading[0], " ".join("".join(self.heading[1]).split())))
            self.heading = None
        elif tag == "title":
            self.out.title = "".join(self.title).strip()
            self.title = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self.cell, self.caption, self.title, self.heading[1] if self.heading else None):
            if part is not None:
                part.append(data)


def check_report(path):
    """Parses report.html at `path`, asserts the structure above and returns its ReportContent."""
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    assert doc.startswith("<!DOCTYPE html>"), f"{path}: no doctype"
    out = ReportContent()
    # The inline SVGs: each must parse as XML on its own (what a browser's SVG parser and an editor need).
    for m in re.finditer(r"<svg\b.*?</svg>", doc, re.S):
        try:
            root = ET.fromstring(m.group(0))
        except ET.ParseError as e:
            raise AssertionError(f"{path}: inline SVG #{len(out.svgs)} does not parse: {e}\n{m.group(0)[:300]}")
        assert root.tag in ("svg", SVG_NS + "svg"), root.tag
        assert root.get("viewBox") or (root.get("width") and root.get("height")), f"{path}: SVG without a size"
        out.svgs.append(root)
    p = _Parser(out)
    p.feed(doc)
    p.close()
    errors = p.errors + [f"<{t}> opened at line {pos[0]} is never closed" for t, pos in p.stack]
    errors += [f"a link to #{i}, which no element has" for i in p.links if i not in out.ids]
    assert not errors, f"{path}:\n" + "\n".join(errors[:20])
    out.text = " ".join("".join(p.text).split())
    return out


def check_svg_file(path):
    """A standalone .svg file: parses as XML, root <svg> with a size; returns its root."""
    root = ET.parse(path).getroot()
    assert root.tag in ("svg", SVG_NS + "svg"), f"{path}: root is {root.tag}"
    assert root.get("viewBox") or (root.get("width") and root.get("height")), f"{path}: SVG without a size"
    return root
