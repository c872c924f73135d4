"""`lollma-tui history`: list, read, export, import, search and delete saved conversations.

Plain text for pipes and SSH sessions: data goes to stdout, notes and errors to stderr, one line
each. Exit status: 0 done, 1 the history could not be used or the user said no, 2 a bad
argument, an unknown or ambiguous id, or an input file that is not a valid export.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from lollma_tui.cli_output import drop_stream
from lollma_tui.core.backends.describe import format_setup, format_stats, model_label
from lollma_tui.core.chat.conversation import Message, ReplyState, reply_end_note
from lollma_tui.core.chat.errors import (
    AmbiguousIdError,
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreTooOldError,
)
from lollma_tui.core.chat.opening import default_store_path, open_store, open_store_read_only
from lollma_tui.core.chat.store import ChatStore, MessageMeta
from lollma_tui.core.formatting import counted
from lollma_tui.core.paths import user_path
from lollma_tui.core.safe_text import clean_text

PROG: Final = "lollma-tui history"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

_READ_ONLY: Final = frozenset({"list", "show", "export", "search"})
_SQLITE_MAX: Final = 2**63 - 1
"""SQLite's INTEGER: a larger --limit or --offset would end in OverflowError when bound."""
_ROLE_NAMES: Final = {"user": "You", "assistant": "Assistant", "system": "System"}


class _StdoutFailed(Exception):
    """Standard output could not be written (a full disk, a dead terminal), but not a closed pipe."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.reason = cause.strerror or str(cause)


class HistoryError(Exception):
    """Ends the command with one line on stderr and the given exit status."""

    def __init__(self, message: str | None, status: int) -> None:
        super().__init__(message or "")
        self.message = message
        self.status = status


def build_history_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=f"Read and manage the saved conversations in {default_store_path()}.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="conversations, most recently updated first")
    listing.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N (default 50)")
    listing.add_argument("--offset", type=_count, default=0, metavar="N", help="skip the first N")

    show = commands.add_parser("show", help="print a conversation as plain text")
    show.add_argument("id", metavar="ID", help="conversation id, or the start of one")

    export = commands.add_parser("export", help="write a conversation as Markdown or JSON")
    export.add_argument("id", metavar="ID", help="conversation id, or the start of one")
    export.add_argument(
        "--format",
        "-f",
        choices=("md", "json"),
        help="md to read, json to keep or import elsewhere (default: from the -o name, else md)",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")

    importing = commands.add_parser("import", help="add a conversation from a JSON export")
    importing.add_argument("file", metavar="FILE", help="a file written by `export --format json`, or -")

    search = commands.add_parser("search", help="find messages in all conversations")
    search.add_argument("text", nargs="+", metavar="TEXT", help="words to find (the last one as a prefix)")
    search.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="at most N hits (default 20)"
    )

    delete = commands.add_parser("delete", help="delete a conversation and all its messages")
    delete.add_argument("id", metavar="ID", help="conversation id, or the start of one")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    return parser


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {number}")
    if number > _SQLITE_MAX:
        raise argparse.ArgumentTypeError(f"expected at most {_SQLITE_MAX}, not {number}")
    return number


def _positive(value: str) -> int:
    number = _count(value)
    if number == 0:
        raise argparse.ArgumentTypeError("expected 1 or more")
    return number


def history_main(argv: Sequence[str] | None = None) -> int:
    """Run one history command; returns the exit status (argparse exits 2 on bad usage itself)."""
    args = build_history_parser().parse_args(argv)
    try:
        try:
            status = _run(args)
        except HistoryError as failure:
            if failure.message:
                _note(failure.message)
            return failure.status
        # Here rather than at exit, where Python would report a full disk as a traceback.
        _flush_out()
        return status
    except BrokenPipeError:
        # The reader (head, less) went away: stop quietly.
        drop_stream(sys.stdout)
        return EXIT_FAILED
    except _StdoutFailed as failure:
        drop_stream(sys.stdout)
        print(f"{PROG}: cannot write to standard output: {failure.reason}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    commands: dict[str, Callable[[ChatStore, argparse.Namespace], int]] = {
        "list": _list,
        "show": _show,
        "export": _export,
        "import": _import,
        "search": _search,
        "delete": _delete,
    }
    store = _open(args.command)
    try:
        return commands[args.command](store, args)
    except StoreError as exc:
        raise HistoryError(str(exc), EXIT_FAILED) from exc
    finally:
        store.close()


def _open(command: str) -> ChatStore:
    path = default_store_path()
    if command in _READ_ONLY:
        return _open_to_read(path)
    return _open_to_write(path)


def _open_to_read(path: Path) -> ChatStore:
    try:
        if not path.exists() or path.stat().st_size == 0:
            # Nothing saved yet: answer from an empty store instead of creating folders to read.
            return ChatStore.open(None)
    except OSError as exc:
        raise HistoryError(
            f"cannot read the chat history at {path}: {exc.strerror or exc}", EXIT_FAILED
        ) from exc
    try:
        return open_store_read_only(path)
    except (StoreCorruptError, StoreTooOldError) as exc:
        if not os.access(path.parent, os.W_OK):
            raise HistoryError(str(exc), EXIT_FAILED) from exc
        # As the app does: a damaged file kept aside under a new name and a fresh history in its
        # place, an older one upgraded.
        return _open_to_write(path)
    except StoreError as exc:
        raise HistoryError(str(exc), EXIT_FAILED) from exc


def _open_to_write(path: Path) -> ChatStore:
    opened = open_store(path)
    if opened.notice:
        _note(opened.notice)
    if not opened.store.persistent:
        # The file is locked, too new or unwritable: the fallback store is empty and would
        # forget whatever this command wrote.
        opened.store.close()
        raise HistoryError(None, EXIT_FAILED)
    return opened.store


# -- commands ----------------------------------------------------------------------------------


def _list(store: ChatStore, args: argparse.Namespace) -> int:
    summaries = store.list_conversations(limit=args.limit, offset=args.offset)
    for summary in summaries:
        count = counted(summary.message_count, "msg")
        # As the Ctrl+O list marks it: a chat that cannot be deleted or opened elsewhere now.
        held = "  ◌ open in lollma-tui" if store.held_elsewhere(summary.id) else ""
        _out(f"{summary.id[:8]}  {_when(summary.updated_at)}  {count:>8}  {_title(summary.title)}{held}")
    shown_to = args.offset + len(summaries)
    if not summaries:
        total = store.count_conversations()
        _note("no conversations saved yet" if total == 0 else f"nothing after {args.offset} of {total}")
    elif len(summaries) == args.limit:
        total = store.count_conversations()
        if total > shown_to:
            _note(f"{args.offset + 1}–{shown_to} of {total}; --offset {shown_to} for the next ones")
    return EXIT_OK


def _show(store: ChatStore, args: argparse.Namespace) -> int:
    from lollma_tui.core.chat.export import settle_streaming

    window = store.load(_resolve(store, args.id))
    conversation = window.conversation
    if not store.held_elsewhere(conversation.id):
        settle_streaming(conversation.messages)  # a crash left it "being written"
    count = len(conversation.messages)
    lines = [
        _title(conversation.title),
        f"id {conversation.id} · created {_when(conversation.created_at)} · updated "
        f"{_when(window.updated_at)} · {counted(count, 'message')}",
    ]
    if conversation.system_prompt.strip():
        lines += ["", "System prompt:", *_indented(conversation.system_prompt)]
    for message in conversation.messages:
        lines += ["", *_message_lines(message, window.meta.get(message.id))]
    _out("\n".join(lines))
    return EXIT_OK


def _message_lines(message: Message, meta: MessageMeta | None) -> list[str]:
    heading = [_ROLE_NAMES[message.role]]
    if message.stats is not None:
        setup = message.stats.setup
        heading.append(" ".join(p for p in (model_label(setup.model), setup.quant) if p))
    heading.append(_when(message.created_at))
    if meta is not None and meta.sibling_count > 1:
        heading.append(f"version {meta.sibling_index + 1} of {meta.sibling_count}")
    lines = [f"── {' · '.join(clean_text(part, keep_lines=False) for part in heading)} ──"]
    if message.thinking.strip():
        # Before the answer and set off from it, as the app folds it.
        lines += [f"  ┆ {line}".rstrip() for line in clean_text(message.thinking.strip("\n")).splitlines()]
    body = clean_text(message.content.rstrip("\n"))
    lines.append(body if body.strip() else "(no text)")
    if message.stats is not None:
        lines.append(f"   ⤷ {format_stats(message.stats)}")
        lines.append(f"   ⤷ {clean_text(format_setup(message.stats.setup), keep_lines=False)}")
    if message.state is ReplyState.ERROR:
        lines.append(f"   ⤷ failed: {clean_text(message.error or 'unknown error', keep_lines=False)}")
    elif (note := reply_end_note(message.state, message.stats)) is not None:
        lines.append(f"   ⤷ {note}")
    return lines


def _export(store: ChatStore, args: argparse.Namespace) -> int:
    from lollma_tui.core.chat.export import (
        ExportTargetExists,
        export_json,
        export_markdown,
        export_target,
        path_argument,
        write_export,
    )

    conversation_id = _resolve(store, args.id)
    output: str | None = None if args.output in (None, "-") else args.output
    kind = args.format or ("json" if output is not None and output.lower().endswith(".json") else "md")
    # A reply still "being written" when no lollma-tui has the chat open is one a crash left.
    settle = not store.held_elsewhere(conversation_id)
    if kind == "json":
        text = export_json(store, conversation_id, settle=settle)
    else:
        text = export_markdown(store, conversation_id, settle=settle)
    if output is None:
        _write_out(text)
        _flush_out()
        return EXIT_OK
    # As /export in the app: a trailing slash names a folder (made if missing), so a typo'd
    # folder is not written as a file of that name.
    target = Path(output)
    try:
        given, folder = path_argument(output)
        target = export_target(given, store.get_summary(conversation_id).title, kind, folder=folder)
        write_export(target, text, overwrite=args.force)
    except ExportTargetExists as exc:
        raise HistoryError(f"{target} already exists (--force replaces it)", EXIT_FAILED) from exc
    except OSError as exc:
        raise HistoryError(f"cannot write {target}: {exc.strerror or exc}", EXIT_FAILED) from exc
    _note(f"wrote {target} ({'JSON' if kind == 'json' else 'Markdown'})")
    return EXIT_OK


def _import(store: ChatStore, args: argparse.Namespace) -> int:
    from lollma_tui.core.chat.errors import ImportFormatError
    from lollma_tui.core.chat.export import MAX_IMPORT_BYTES, copy_reason, parse_json, read_import_file

    try:
        if args.file == "-":
            # One byte past the cap is enough to refuse: `< /dev/zero` must not fill memory.
            data = sys.stdin.buffer.read(MAX_IMPORT_BYTES + 1)
        else:
            data = read_import_file(user_path(args.file))
    except OSError as exc:
        raise HistoryError(f"cannot read {args.file}: {exc.strerror or exc}", EXIT_USAGE) from exc
    except ImportFormatError as exc:
        raise HistoryError(str(exc), EXIT_USAGE) from exc
    try:
        tree = parse_json(data)
        new_id = store.import_tree(tree)
    except ImportFormatError as exc:
        raise HistoryError(f"{args.file}: {exc}", EXIT_USAGE) from exc
    # The visible thread, as list and show count it; the file also holds earlier versions.
    visible = store.get_summary(new_id).message_count
    count = counted(visible, "message")
    if len(tree.messages) != visible:
        count += f" ({len(tree.messages)} with earlier versions)"
    why = copy_reason(tree, new_id)
    copy = "" if why is None else f" under new ids ({why})"
    _note(f"imported “{_title(tree.title)}”{copy}: {count}")
    _out(new_id)
    return EXIT_OK


def _search(store: ChatStore, args: argparse.Namespace) -> int:
    query = " ".join(args.text)
    if not query.strip():
        raise HistoryError("search needs some text to find", EXIT_USAGE)
    hits = store.search(query, limit=args.limit)
    for hit in hits:
        snippet = " ".join(clean_text(hit.snippet, keep_lines=False).split())
        role = "you" if hit.role == "user" else hit.role
        ids = f"{hit.conversation_id[:8]}  {hit.message_id[:8]}"
        _out(f"{ids}  {role:<9}  {_title(hit.conversation_title)}: {snippet}")
    if not hits:
        _note(f"no messages match {query!r}")
    return EXIT_OK


def _delete(store: ChatStore, args: argparse.Namespace) -> int:
    conversation_id = _resolve(store, args.id)
    summary = store.get_summary(conversation_id)
    # The count is the thread shown; the versions Ctrl+R and /edit left go with it.
    described = (
        f"“{_title(summary.title)}” ({counted(summary.message_count, 'message')} and their earlier versions)"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise HistoryError(
                "not deleting without --yes: input is not a terminal to confirm on", EXIT_USAGE
            )
        if not _confirm(f"Delete {described}? This cannot be undone. [y/N] "):
            raise HistoryError("nothing deleted", EXIT_FAILED)
    store.delete_conversation(conversation_id)
    _note(f"deleted {described}, id {conversation_id}")
    return EXIT_OK


def _confirm(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


# -- helpers -----------------------------------------------------------------------------------


def _resolve(store: ChatStore, id_or_prefix: str) -> str:
    try:
        return store.resolve_id(id_or_prefix)
    except (NotFoundError, AmbiguousIdError) as exc:
        raise HistoryError(str(exc), EXIT_USAGE) from exc


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _title(title: str) -> str:
    return " ".join(clean_text(title, keep_lines=False).split()) or "Untitled conversation"


def _indented(text: str) -> list[str]:
    return ["  " + line for line in clean_text(text.strip("\n")).splitlines()]


def _out(line: str) -> None:
    _write_out(line + "\n")


def _write_out(text: str) -> None:
    try:
        sys.stdout.write(text)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _StdoutFailed(exc) from exc


def _flush_out() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise _StdoutFailed(exc) from exc


def _note(line: str) -> None:
    _flush_out()  # data and notes stay in order on a terminal that shows both
    print(f"{PROG}: {clean_text(line)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(history_main())
