"""A reply's Markdown drawn line by line, so that streaming costs what the new text costs.

Textual's `Markdown` widget mounts a widget per block (and more inside lists, tables and code
fences); every update laid all of them out again and repainted the screen, so a streamed reply
cost more the longer it got (35-50 % of a core at 100 tok/s in a 120×35 terminal, where a program
printing the same stream spends 2-3 %). Here the reply is one widget that draws cached lines
(Textual's line API):

- the blocks before the last one are finished: they are rendered once, when the next block
  starts, and kept as lines;
- the last block is rendered again on each update, and only the lines that differ are
  repainted; a long code block being written is rendered `CODE_CHUNK_LINES` lines at a time,
  so a 200-line listing does not cost 200 lines of highlighting on every update;
- while the reply streams, the widget grows a quarter of the screen at a time: new lines fill
  the room already there, so most updates repaint a line or two and need no layout (a layout
  pass redoes the whole screen, two passes in a row when a container grows, and with the log
  anchored to the bottom everything in it is repainted); the reader sees the text written
  into blank room below it, and the log move up by that much when the room is used up;
- when the reply ends, the whole document is rendered once more in one piece, so nothing of
  the block-by-block rendering (a reference link defined late, say) outlives the stream.

Rendering is rich's Markdown, the same as a reply loaded from the history (`HistoryTurn`), so a
reply looks the same while it streams, once it is done, and after a restart.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.reactive import Reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from lollma_tui.ui.literal import StreamCleaner, plain

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.markdown import Markdown as RichMarkdown

# markdown-it, rich's Markdown and pygments are imported on first use, not with this module:
# the first frame does not wait for them (the app preloads them once the screen is up).

STEP_SHARE = 2
"""While streaming, the height grows by 1/STEP_SHARE of the screen's height at once."""

MIN_STEP_LINES = 4

CODE_CHUNK_LINES = 8
"""Lines of a code block still being written that are highlighted together, once."""


@functools.cache
def block_parser() -> MarkdownIt:
    """The parser rich's Markdown uses, so blocks are cut where rich sees them end."""
    from markdown_it import MarkdownIt

    # No HTML: rich draws none of it, so "List<String>" showed as "List"; a model's angle
    # brackets are text.
    return MarkdownIt("commonmark", {"html": False}).enable("strikethrough").enable("table")


def _scheme(url: str) -> str:
    head, colon, _ = url.partition(":")
    return head.strip().lower() if colon else ""


def top_blocks(tokens: list[Token]) -> list[Token]:
    """The opening token of each top-level block (its `map` holds its lines)."""
    return [token for token in tokens if token.level == 0 and token.nesting >= 0 and token.map]


@functools.cache
def _markdown_template() -> RichMarkdown:
    from rich.markdown import CodeBlock, Markdown as RichMarkdown
    from rich.syntax import Syntax

    @functools.cache
    def lexer(name: str) -> Any:
        # rich looks a lexer up by name on every render, more than once (2 ms a time): keep the
        # one it finds. Unknown names stay names; rich falls back to plain text for them.
        return Syntax("", name, tab_size=4).lexer or name

    class ReplyCodeBlock(CodeBlock):
        """rich's code block, its lexer found once per language."""

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            code = str(self.text).rstrip()
            yield Syntax(code, lexer(self.lexer_name), theme=self.theme, word_wrap=True, padding=1)

    class ReplyMarkdownRenderable(RichMarkdown):
        elements = {**RichMarkdown.elements, "fence": ReplyCodeBlock, "code_block": ReplyCodeBlock}

    return ReplyMarkdownRenderable("")


def preload() -> None:
    """Import and build what the first reply needs (markdown-it, rich's Markdown, pygments and
    its Python lexer: about a tenth of a second), e.g. on a thread once the screen is up."""
    import io

    from rich.console import Console

    sample = "# a\n\n*b* `c`\n\n- d\n\n| e |\n|---|\n| f |\n\n```python\ng = 1\n```\n"
    Console(file=io.StringIO(), width=40).print(rich_markdown(sample))


def rich_markdown(source: str, tokens: list[Token] | None = None) -> RichMarkdown:
    """rich's Markdown of `source`, parsed by the one parser (or given its tokens).

    rich builds a new markdown-it parser for every `Markdown` (a millisecond here, a good part
    of an update): this copies a default one and swaps in the text and its tokens.
    """
    template = _markdown_template()
    markdown = type(template).__new__(type(template))
    markdown.__dict__.update(template.__dict__)
    markdown.markup = source
    markdown.parsed = tokens if tokens is not None else block_parser().parse(source)
    return markdown


def block_kind(block: Token) -> str:
    """What decides how rich spaces a block from its neighbours: its type and its marker."""
    return f"{block.type}{block.markup}"


Seam = tuple[list[Strip], int]
"""Where a block meets the one before: the lines in between, and how many of its own first
lines rich leaves out there (a list brings its own blank line; after a paragraph it is the gap)."""


def find_seam(joined: list[Strip], alone: list[Strip]) -> Seam | None:
    """How `alone` (a block drawn by itself) appears in `joined` (drawn after the prior block)."""
    for skip in range(min(3, len(alone) + 1)):
        rest = alone[skip:]
        gap = len(joined) - len(rest)
        if 0 <= gap <= 3 and joined[gap:] == rest and not any(line.text.strip() for line in joined[:gap]):
            return joined[:gap], skip
    return None


def first_difference(old: list[Strip], new: list[Strip]) -> int:
    """The index of the first line that differs (the shorter length if one extends the other)."""
    for index, (before, after) in enumerate(zip(old, new, strict=False)):
        if before != after:
            return index
    return min(len(old), len(new))


def clickable_links(line: list[Segment]) -> list[Segment]:
    """`line` with each hyperlink made a click on the app's `link` action instead.

    Rich draws a link as a terminal hyperlink (OSC 8), which the terminal opens on a click
    without asking the app; as an action, the click reaches `App.open_url`, which opens only
    http(s) links and says why it refused any other (as Textual's Markdown widget does).
    """
    if not any(segment.style is not None and segment.style.link for segment in line):
        return line
    return [
        Segment(text, _click_style(style), control)
        if style is not None and style.link
        else Segment(text, style, control)
        for text, style, control in line
    ]


def _click_style(style: Style) -> Style:
    return style.update_link(None) + Style.from_meta({"@click": f"link({style.link!r})"})


class ReplyMarkdown(Widget):
    """Markdown source shown as rendered lines; `append` adds text, `update` replaces it."""

    # Textual sets this right after laying the widget out; its default asks for another layout
    # pass, a second whole-screen one for each step the reply grows.
    virtual_size = Reactive(Size(0, 0), layout=False)

    DEFAULT_CSS = """
    ReplyMarkdown {
        height: auto;
    }
    """

    def __init__(self, source: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        # Kept without control characters, so every line drawn from it is free of them too.
        self._source = plain(source)
        self._cleaner = StreamCleaner()
        self._settled_chars = 0
        """Characters of the source rendered into `_settled`; they never change again."""
        self._settled: list[Strip] = []
        self._prior_block = ""
        """The last settled block's source: the space rich puts after it depends on its kind."""
        self._prior_kind = ""
        self._seams: dict[str, Seam] = {}
        """How a block of one kind follows one of another ("paragraph_open>fence```"), each
        found once by drawing the two together."""
        self._tail: list[Strip] = []
        self._code_chunks: list[list[Strip]] = []
        """Rows of the code block being written, `CODE_CHUNK_LINES` source lines each."""
        self._code_chunks_of: tuple[int, str] | None = None
        """Which code block `_code_chunks` belongs to: where it starts, and its fence."""
        self._width = 0
        self._stale = True
        """The source changed since the lines were rendered."""
        self._streaming = False
        """Text is being appended: the height grows in steps (see `STEP_SHARE`)."""
        self._line_style: Style | None = None
        """The widget's own colours, applied to every line as it is rendered."""

    @property
    def source(self) -> str:
        return self._source

    @staticmethod
    def get_stream(body: ReplyMarkdown) -> ReplyStream:
        """What the reply's text is written into while it streams (as `Markdown.get_stream`)."""
        return ReplyStream(body)

    def append(self, text: str) -> None:
        """Add text at the end: the last block is rendered again, finished ones are kept."""
        text = self._cleaner.feed(text)
        if text:
            self._source += text
            self._streaming = True
            self._changed()

    def update(self, source: str) -> None:
        """Show `source` rendered as one document, at its own height (the reply has ended)."""
        self._source = plain(source)
        self._cleaner = StreamCleaner()
        self._streaming = False
        self._forget_lines()
        self.refresh(layout=True)

    # -- rendering --------------------------------------------------------------------------

    @property
    def rendered_lines(self) -> list[Strip]:
        """The rendered lines (without the room kept for lines still to come)."""
        return [*self._settled, *self._tail]

    @property
    def rows(self) -> int:
        count = len(self._settled) + len(self._tail)
        if self._streaming and self.is_mounted:
            step = max(MIN_STEP_LINES, self.screen.size.height // STEP_SHARE)
            return -(-count // step) * step
        return count

    def _forget_lines(self) -> None:
        self._settled_chars = 0
        self._settled = []
        self._prior_block = ""
        self._prior_kind = ""
        self._seams = {}
        self._tail = []
        self._code_chunks = []
        self._code_chunks_of = None
        self._stale = True

    def _changed(self) -> None:
        self._stale = True
        width = self.content_region.width if self.is_mounted else 0
        if not width or width != self._width:
            # Not laid out yet, or the width moved: the layout pass renders at the new width.
            self.refresh(layout=True)
            return
        before, rows = self.rendered_lines, self.rows
        self._render_lines(width)
        after = self.rendered_lines
        if self.rows != rows:
            self.refresh(layout=True)
            return
        first = first_difference(before, after)
        last = max(len(before), len(after))
        if last > first:
            self.refresh(Region(0, first, width, last - first))

    def _draw(self, source: str, width: int, tokens: list[Token] | None = None) -> list[Strip]:
        """`source` rendered at `width`, in the widget's colours: ready for `render_line`."""
        if self._line_style is None:
            self._line_style = self.rich_style
        style = self._line_style
        console = self.app.console
        options = console.options.update(width=width, height=None)
        markdown = rich_markdown(source, tokens)
        lines = console.render_lines(markdown, options, style=style, pad=False)
        return [Strip(clickable_links(line)).extend_cell_length(width, style) for line in lines]

    def _draw_after_prior(
        self, source: str, kind: str, width: int, tokens: list[Token] | None = None
    ) -> list[Strip]:
        """`source` (starting with a block of `kind`) drawn as it shows after the settled lines."""
        lines = self._draw(source, width, tokens)
        if not self._prior_block:
            return lines
        pair = f"{self._prior_kind}>{kind}"
        seam = self._seams.get(pair)
        if seam is None:
            # Drawn once after the prior block, to see how rich joins the two kinds of block.
            prior_rows = len(self._draw(self._prior_block, width))
            joined = self._draw(self._prior_block + source, width)[prior_rows:]
            seam = find_seam(joined, lines)
            if seam is None or not any(line.text.strip() for line in lines):
                return joined  # no seam, or one not to trust yet: the block shows nothing so far
            self._seams[pair] = seam
        gap, skip = seam
        return [*gap, *lines[skip:]]

    def _render_lines(self, width: int) -> None:
        if width != self._width:
            self._width = width
            self._forget_lines()
        if not self._stale:
            return
        self._stale = False
        rest = self._source[self._settled_chars :]
        tokens = block_parser().parse(rest)
        blocks = top_blocks(tokens)
        if len(blocks) >= 2:
            # Every block but the last is finished: no later text can change how it renders.
            starts = [block.map[0] for block in blocks if block.map]
            # By "\n" only, as markdown-it counts lines (splitlines also breaks at \f, \v, …).
            lines = [f"{line}\n" for line in rest.split("\n")]
            finished = "".join(lines[: starts[-1]])
            self._settled.extend(self._draw_after_prior(finished, block_kind(blocks[0]), width))
            self._settled_chars += len(finished)
            self._prior_block = "".join(lines[starts[-2] : starts[-1]])
            self._prior_kind = block_kind(blocks[-2])
            rest = rest[len(finished) :]
            tokens = block_parser().parse(rest)
        last = blocks[-1] if blocks else None
        if self._streaming and last is not None and last.type == "fence":
            self._tail = self._draw_code(last, width)
        else:
            self._tail = self._draw_after_prior(rest, block_kind(last), width, tokens) if last else []

    def _draw_code(self, block: Token, width: int) -> list[Strip]:
        """The code block being written: finished chunks of lines from before, the rest now.

        Each chunk is drawn as a code block of its own and its padding rows trimmed where it
        meets the next; highlighting that spans chunks (a long string) may differ until the
        block is finished and drawn whole.
        """
        fence = block.markup
        owner = (self._settled_chars, fence + block.info)
        if owner != self._code_chunks_of:
            self._code_chunks, self._code_chunks_of = [], owner
        # The source holds no control characters: "\n" is the only line break left in it.
        code = block.content.splitlines(keepends=True)
        # The last line may still grow: it is never part of a finished chunk.
        while (len(self._code_chunks) + 1) * CODE_CHUNK_LINES < len(code):
            start = len(self._code_chunks) * CODE_CHUNK_LINES
            chunk = self._draw_code_lines(fence, block.info, code[start : start + CODE_CHUNK_LINES], width)
            self._code_chunks.append(chunk[:-1])  # its bottom padding: the next chunk follows
        rest = self._draw_code_lines(
            fence, block.info, code[len(self._code_chunks) * CODE_CHUNK_LINES :], width
        )
        return [row for chunk in self._code_chunks for row in chunk] + rest

    def _draw_code_lines(self, fence: str, info: str, lines: list[str], width: int) -> list[Strip]:
        body = "".join(lines)
        if body and not body.endswith("\n"):
            body += "\n"  # a line still being written: the closing fence goes below it, not on it
        source = f"{fence}{info}\n{body}{fence}\n"
        if not self._code_chunks:
            return self._draw_after_prior(source, f"fence{fence}", width)  # first rows, gap included
        return self._draw(source, width)[1:]  # without its top padding: it continues a chunk

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._render_lines(width)
        return self.rows

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # New colours (a theme change): render every line again, now; the lines drawn so far
        # would be shown as they are until something else asked for a layout.
        self._line_style = None
        self._width = 0
        if self.is_mounted:
            self.refresh(layout=True)

    async def action_link(self, href: str) -> None:
        """A click on a link: the app decides whether it opens (see `clickable_links`). A
        scheme written in escapes (``%66ile:``) is judged as the ``file:`` a browser would see;
        any other link opens as written, since decoding changes what its query says."""
        decoded = unquote(href)
        self.app.open_url(href if _scheme(decoded) == _scheme(href) else decoded)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width and width != self._width:
            # Back at a width laid out before (the side panel or drawer shown again): Textual
            # reuses that arrangement and never asks the height, which is what renders lines.
            rows = self.rows
            self._render_lines(width)
            if self.rows != rows:
                self.refresh(layout=True)
        lines = self._settled if y < len(self._settled) else self._tail
        index = y if lines is self._settled else y - len(self._settled)
        if index >= len(lines):
            return Strip.blank(self._width, self._line_style)
        # Offsets tell a mouse selection where it is in the text (without them it took the
        # whole widget, and copied its CSS name).
        line = lines[index].apply_offsets(0, y)
        selection = self.text_selection
        span = selection.get_span(y) if selection is not None else None
        if span is None:
            return line
        start, end = span
        end = line.cell_length if end == -1 else min(end, line.cell_length)
        if start >= end:
            return line
        selected = self.screen.get_component_rich_style("screen--selection")
        # Over the text's own colours, as the terminal shows a selection.
        marked = line.crop(start, end)
        marked = Strip(Segment.apply_style(marked, post_style=selected), marked.cell_length)
        return Strip.join([line.crop(0, start), marked, line.crop(end)])

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected part of the text as drawn (wrapped lines, list marks included)."""
        text = "\n".join(line.text.rstrip() for line in self.rendered_lines)
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()


class ReplyStream:
    """Streamed text for a `ReplyMarkdown`; each write is drawn on the next refresh."""

    def __init__(self, body: ReplyMarkdown) -> None:
        self._body = body

    async def write(self, markdown_fragment: str) -> None:
        self._body.append(markdown_fragment)

    async def stop(self) -> None:
        """Nothing is left pending: every write was taken at once."""
