"""Export a conversation to Markdown (to read) or JSON (to keep or move), and import JSON back.

Markdown holds the visible thread: YAML front matter (title, ids, dates, the models used), then
each turn under a heading; under each reply, a quoted block gives the set-up, speed, sampling
settings and, unless it completed normally, how it ended.

JSON format ``lollma-tui/conversation``, version 1 — one object, every branch included::

    {
      "format": "lollma-tui/conversation",
      "version": 1,
      "exported_at": 1764076801.5,               # Unix seconds
      "conversation": {
        "id": "3f2a…", "title": "…", "system_prompt": "…",
        "created_at": 1764076000.0, "updated_at": 1764076801.2,
        "current_message_id": "9c1e…"           # end of the visible thread; null when empty
      },
      "messages": [                              # parents before children
        {
          "id": "…", "parent_id": null | "…",
          "role": "system" | "user" | "assistant",
          "content": "…",
          "state": "complete" | "streaming" | "stopped" | "length" | "error" | "incomplete",
          "error": null | "…",
          "created_at": 1764076001.0,
          "stats": null | {ReplyStats fields, with "setup": {RunSetup fields}},
          "sampling": null | {SamplingSettings fields; "stop" is a list}
        }
      ]
    }

Field names inside "stats", "setup" and "sampling" are those of the dataclasses in
`lollma_tui.core.backends.base` and `lollma_tui.core.settings`. Import is strict: unknown keys,
wrong types, out-of-range settings, dangling parents or a newer version are refused with one
error naming the place, and nothing is written. A later format version bumps "version".

An import file comes from anywhere, so its reading is bounded too: a regular file only (a FIFO
or ``/dev/zero`` is refused, never read), at most `MAX_IMPORT_BYTES`, JSON nesting beyond the
parser's recursion limit refused like any other invalid JSON, timestamps between 1970 and 9999,
integers that fit 64 bits, text without unpaired surrogates.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from markdown_it import MarkdownIt

from lollma_tui import __version__
from lollma_tui.core import formatting as fmt
from lollma_tui.core.backends.base import ReplyStats, Role, RunSetup
from lollma_tui.core.backends.describe import setup_layers, setup_parts, tuning_parts
from lollma_tui.core.chat import codec
from lollma_tui.core.chat.conversation import Conversation, Message, ReplyState, reply_end_note
from lollma_tui.core.chat.errors import ImportFormatError
from lollma_tui.core.chat.store import ChatStore, ConversationTree, StoredMessage, ThreadWindow
from lollma_tui.core.paths import unknown_home, user_path
from lollma_tui.core.safe_files import TargetExistsError, make_folder, read_regular_file, write_private_file
from lollma_tui.core.safe_text import clean_text, has_surrogates
from lollma_tui.core.settings import BackendKind, SamplingSettings

FORMAT = "lollma-tui/conversation"
FORMAT_VERSION = 1
MAX_IMPORT_BYTES = 64 << 20
MAX_TIMESTAMP = 253_402_300_799.0
"""9999-12-31T23:59:59Z: every clock and date formatter handles up to there."""

_RAW_CONTROLS = re.compile("[\x7f-\x9f]")
"""DEL and C1, which `json.dumps` leaves as they are (it escapes only C0)."""

_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_CONVERSATION_KEYS = ("id", "title", "system_prompt", "created_at", "updated_at", "current_message_id")
_MESSAGE_KEYS = ("id", "parent_id", "role", "content", "state", "error", "created_at", "stats", "sampling")
_OPTIONAL_MESSAGE_KEYS = ("thinking",)
"""Written only when the message has one, so files from before it was kept read as they were."""


# -- JSON ---------------------------------------------------------------------------------------


def tree_to_json(tree: ConversationTree, *, exported_at: float | None = None) -> str:
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": time.time() if exported_at is None else exported_at,
        "conversation": {
            "id": tree.id,
            "title": tree.title,
            "system_prompt": tree.system_prompt,
            "created_at": tree.created_at,
            "updated_at": tree.updated_at,
            "current_message_id": tree.leaf_id,
        },
        "messages": [_message_to_json(stored) for stored in tree.messages],
    }
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    # Escaped, a C1 control (0x9b is CSI to many terminals) stays in the backup without reaching
    # the terminal of whoever prints the file; outside strings JSON holds only ASCII.
    return _RAW_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _message_to_json(stored: StoredMessage) -> dict[str, Any]:
    message = stored.message
    return {
        "id": message.id,
        "parent_id": stored.parent_id,
        "role": message.role,
        "content": message.content,
        "state": message.state.value,
        "error": message.error,
        "created_at": message.created_at,
        "stats": codec.to_jsonable(message.stats),
        "sampling": codec.to_jsonable(stored.sampling),
    } | ({"thinking": message.thinking} if message.thinking else {})


def export_json(store: ChatStore, conversation_id: str, *, settle: bool = False) -> str:
    """The conversation with every branch as JSON; `settle`: see `settle_streaming`."""
    tree = store.message_tree(conversation_id)
    if settle:
        settle_streaming(stored.message for stored in tree.messages)
    return tree_to_json(tree)


def export_thread(conversation: Conversation, kind: str) -> str:
    """The thread on screen as `kind` ("md" or "json"), for a chat the history holds only part
    of (a save failed): without the other versions of its replies, or their sampling."""
    now = time.time()
    if kind == "md":
        total = len(conversation.messages)
        return window_to_markdown(ThreadWindow(conversation, now, 0, total, {}), exported_at=now)
    messages = conversation.messages
    parents = [None, *(message.id for message in messages)]
    stored = tuple(StoredMessage(message, parent) for message, parent in zip(messages, parents, strict=False))
    tree = ConversationTree(
        conversation.id, conversation.title, conversation.system_prompt, conversation.created_at, now,
        parents[-1], stored,
    )  # fmt: skip
    return tree_to_json(tree, exported_at=now)


def settle_streaming(messages: Iterable[Message]) -> None:
    """Replies still saved as being written by a lollma-tui that is gone (it crashed, or was
    killed) are incomplete, as the next start marks them: for readers that do not write."""
    for message in messages:
        if message.state is ReplyState.STREAMING:
            message.state = ReplyState.INCOMPLETE


def _is_markdown_export(text: str) -> bool:
    # Our front matter: the first lines of every Markdown export (see `export_markdown`).
    head = text[:2000]
    return head.startswith("---\n") and "\nexported_by: lollma-tui" in head


def parse_json(data: str | bytes) -> ConversationTree:
    """Validate an export completely; raises `ImportFormatError` with one clear line."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError(f"not a conversation export: larger than {MAX_IMPORT_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
        document = json.loads(text)
    except RecursionError:
        # The parser recurses once per level and stops near a thousand: a clean exception, and
        # far beyond the few levels of the format, whose validation refuses anything deeper.
        raise ImportFormatError("not a conversation export: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"not a conversation export: not UTF-8 text ({exc.reason})") from exc
    except ValueError as exc:  # JSONDecodeError, and integers of more than 4300 digits
        if _is_markdown_export(text):
            raise ImportFormatError(
                "this is a Markdown export, which is for reading: import the JSON export instead "
                "(/export json in the app, lollma-tui history export -f json ID), which keeps every "
                "reply's versions, settings and speed"
            ) from None
        raise ImportFormatError(f"not a conversation export: invalid JSON ({str(exc)[:200]})") from exc
    try:
        return _tree_from_document(document)
    except codec.FormatError as exc:
        raise ImportFormatError(f"not a valid conversation export: {exc}") from exc


def read_import_file(path: Path) -> bytes:
    """The bytes of an export file to import; `ImportFormatError` when it cannot be read as one."""
    try:
        return read_regular_file(path, MAX_IMPORT_BYTES)
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc


class ExportTargetExists(TargetExistsError):
    """An export would replace an existing file (or symlink): the caller asks before overwriting."""


def export_file_name(title: str, kind: str) -> str:
    """The file an export gets when none is named: the conversation's title as a slug, in
    whatever script it is written (a Cyrillic or CJK title is no less a name)."""
    # A vowel sign (Devanagari) or a decomposed accent is part of its letter, not a separator.
    kept = "".join(
        char if char.isalnum() or unicodedata.category(char) in ("Mn", "Mc") else "-"
        for char in unicodedata.normalize("NFC", title)
    )
    slug = re.sub(r"-+", "-", kept).strip("-").lower()[:48].rstrip("-")
    return f"{slug or 'conversation'}.{kind}"


def path_argument(text: str) -> tuple[Path, bool]:
    """A path typed after /export or /import, and whether it names a folder (it ends in a
    separator). The quotes a terminal puts around a dropped file are not part of it, nor the
    backslashes some put before its spaces.

    `~name/…` of no user raises OSError (ENOENT) rather than standing for a folder named
    `~name` here, which an export would create."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    elif os.sep == "/" and "\\" in text and not os.path.lexists(os.path.expanduser(text)):
        # macOS Terminal, iTerm and kitty drop a file as `my\ notes.json`, escaped for a shell.
        text = re.sub(r"\\(.)", r"\1", text)
    home = unknown_home(text)
    if home is not None:
        raise OSError(errno.ENOENT, f"no user named {home[1:]!r} for {home}", text)
    return user_path(text), text.endswith(("/", os.sep))


def export_target(given: Path, title: str, kind: str, *, folder: bool = False) -> Path:
    """`given`, or the export's own file name inside it when it names a folder (made when
    `folder` says it is one and it is not there yet)."""
    if folder:
        make_folder(given)
    return given / export_file_name(title, kind) if given.is_dir() else given


def write_export(path: Path, text: str, *, overwrite: bool = False) -> Path:
    """Write an export readable by the user only, in one step (no half-written file).

    A symlink at `path` is never written through. Raises `ExportTargetExists` when something
    is at `path` and `overwrite` is false; OSError when the file cannot be written.
    """
    try:
        return write_private_file(path, text, overwrite=overwrite)
    except TargetExistsError:
        raise ExportTargetExists(path) from None
    except OSError as error:
        # Named by the file asked for, not the hidden temporary one next to it that failed.
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error


def import_json(store: ChatStore, data: str | bytes | Path) -> str:
    """Import one exported conversation in a single transaction; returns its id in the store.

    Nothing is written unless the whole file is valid. Ids already in the store (re-importing a
    backup) are replaced by fresh ones rather than overwriting anything.
    """
    content = read_import_file(data) if isinstance(data, Path) else data
    return store.import_tree(parse_json(content))


def copy_reason(tree: ConversationTree, new_id: str) -> str | None:
    """Why an imported conversation was saved under new ids (a copy), or None where its own
    ids were kept."""
    if new_id == tree.id:
        return None
    from lollma_tui.core.chat.store_tree import OWN_ID

    if OWN_ID.fullmatch(tree.id):
        return "its ids were already in the history"
    return "its ids were not lollma-tui's"


def import_json_noting(store: ChatStore, path: Path) -> tuple[str, str | None]:
    """`import_json` of a file: the conversation's id, and `copy_reason`."""
    tree = parse_json(read_import_file(path))
    new_id = store.import_tree(tree)
    return new_id, copy_reason(tree, new_id)


def _tree_from_document(document: object) -> ConversationTree:
    top = _object(document, "top level", ("format", "version", "exported_at", "conversation", "messages"))
    if top["format"] != FORMAT:
        raise codec.FormatError(f"format: expected {FORMAT!r}, got {codec.brief(top['format'])}")
    version = top["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise codec.FormatError(f"version: expected an integer, got {codec.kind_of(version)}")
    if version > FORMAT_VERSION:
        raise codec.FormatError(f"version {version} is newer than this lollma-tui reads ({FORMAT_VERSION})")
    if version < 1:
        raise codec.FormatError(f"version: {version} is not a version")
    _timestamp(top, "exported_at", "top level")
    head = _object(top["conversation"], "conversation", _CONVERSATION_KEYS)
    raw_messages = top["messages"]
    if not isinstance(raw_messages, list):
        raise codec.FormatError(f"messages: expected a list, got {codec.kind_of(raw_messages)}")
    messages: list[StoredMessage] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_messages):
        stored = _message_from_json(raw, f"messages[{i}]")
        if stored.message.id in seen:
            raise codec.FormatError(f"messages[{i}].id: {stored.message.id!r} appears twice")
        if stored.parent_id is not None and stored.parent_id not in seen:
            raise codec.FormatError(
                f"messages[{i}].parent_id: {stored.parent_id!r} is not an earlier message"
                " (parents must come before their replies)"
            )
        seen.add(stored.message.id)
        messages.append(stored)
    leaf = _optional_str(head, "current_message_id", "conversation")
    if leaf is not None and leaf not in seen:
        raise codec.FormatError(
            f"conversation.current_message_id: {codec.brief(leaf)} is not among the messages"
        )
    if leaf is None and messages:
        raise codec.FormatError(
            "conversation.current_message_id: must name a message when there are messages"
        )
    return ConversationTree(
        id=_id(head, "id", "conversation"),
        title=_str(head, "title", "conversation"),
        system_prompt=_str(head, "system_prompt", "conversation"),
        created_at=_timestamp(head, "created_at", "conversation"),
        updated_at=_timestamp(head, "updated_at", "conversation"),
        leaf_id=leaf,
        messages=tuple(messages),
    )


def _message_from_json(raw: object, where: str) -> StoredMessage:
    record = _object(raw, where, _MESSAGE_KEYS, optional=_OPTIONAL_MESSAGE_KEYS)
    role = record["role"]
    if role not in _ROLES:
        choices = ", ".join(repr(r) for r in _ROLES)
        raise codec.FormatError(f"{where}.role: expected one of {choices}, got {codec.brief(role)}")
    try:
        state = ReplyState(cast(str, record["state"]))
    except (ValueError, TypeError):
        choices = ", ".join(repr(s.value) for s in ReplyState)
        raise codec.FormatError(
            f"{where}.state: expected one of {choices}, got {codec.brief(record['state'])}"
        ) from None
    stats_raw = record["stats"]
    sampling_raw = record["sampling"]
    message = Message(
        role=role,
        content=_str(record, "content", where),
        id=_id(record, "id", where),
        created_at=_timestamp(record, "created_at", where),
        state=state,
        stats=None if stats_raw is None else codec.from_jsonable(ReplyStats, stats_raw, f"{where}.stats"),
        error=_optional_str(record, "error", where),
        thinking=_str(record, "thinking", where) if "thinking" in record else "",
    )
    sampling = (
        None
        if sampling_raw is None
        else codec.from_jsonable(SamplingSettings, sampling_raw, f"{where}.sampling")
    )
    parent = record["parent_id"]
    if parent is not None:
        parent = _id(record, "parent_id", where)
    return StoredMessage(message, parent, sampling)


def _object(
    value: object, where: str, keys: Sequence[str], *, optional: Sequence[str] = ()
) -> dict[str, object]:
    if not isinstance(value, dict):
        raise codec.FormatError(f"{where}: expected an object, got {codec.kind_of(value)}")
    unknown = sorted(str(key) for key in value if key not in keys and key not in optional)
    if unknown:
        raise codec.FormatError(f"{where}: unknown field {codec.brief(unknown[0])}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise codec.FormatError(f"{where}: missing field {missing[0]!r}")
    return cast(dict[str, object], value)


def _str(record: dict[str, object], key: str, where: str) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise codec.FormatError(f"{where}.{key}: expected a string, got {codec.kind_of(value)}")
    if has_surrogates(value):
        raise codec.FormatError(f"{where}.{key}: text with an unpaired surrogate (\\ud800-\\udfff)")
    return value


def _optional_str(record: dict[str, object], key: str, where: str) -> str | None:
    return None if record[key] is None else _str(record, key, where)


def _id(record: dict[str, object], key: str, where: str) -> str:
    value = _str(record, key, where)
    if not value or len(value) > 128 or not value.isprintable():
        raise codec.FormatError(f"{where}.{key}: expected an id (1 to 128 printable characters)")
    return value


def _timestamp(record: dict[str, object], key: str, where: str) -> float:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise codec.FormatError(f"{where}.{key}: expected a number, got {codec.kind_of(value)}")
    # Compared before any float conversion: an integer of 300 digits has no float.
    if not (0 <= value <= MAX_TIMESTAMP):
        raise codec.FormatError(
            f"{where}.{key}: {codec.brief(value)} is not a date between 1970 and 9999 (Unix seconds)"
        )
    return float(value)


# -- Markdown -----------------------------------------------------------------------------------


def export_markdown(
    store: ChatStore, conversation_id: str, *, exported_at: float | None = None, settle: bool = False
) -> str:
    window = store.load(conversation_id)
    if settle:
        settle_streaming(window.conversation.messages)
    return window_to_markdown(window, exported_at=exported_at)


def window_to_markdown(window: ThreadWindow, *, exported_at: float | None = None) -> str:
    conversation = window.conversation
    exported = time.time() if exported_at is None else exported_at
    models: list[str] = []
    for message in conversation.messages:
        if message.stats is not None:
            label = _model_label(message.stats.setup)
            if label not in models:
                models.append(label)
    lines = [
        "---",
        f"title: {_yaml_str(conversation.title or 'Untitled conversation')}",
        f"conversation_id: {conversation.id}",
        f"created: {_iso(conversation.created_at)}",
        f"updated: {_iso(window.updated_at)}",
        f"exported: {_iso(exported)}",
        f"messages: {len(conversation.messages)}",
    ]
    if window.start > 0:
        lines.append(f"first_message: {window.start + 1}  # of {window.total}")
    lines.append("models:" + ("" if models else " []"))
    lines.extend(f"  - {_yaml_str(label)}" for label in models)
    lines += [f"exported_by: lollma-tui {__version__}", "---", ""]
    lines.append(f"# {conversation.title or 'Untitled conversation'}")
    lines.append("")
    if conversation.system_prompt.strip():
        lines += ["## System prompt", "", *_quoted(conversation.system_prompt), ""]
    for message in conversation.messages:
        meta = window.meta.get(message.id)
        lines += _message_markdown(message, None if meta is None else meta.sampling)
    # Markdown is for reading (cat, less, an editor): saved text loses its escape sequences.
    return clean_text("\n".join(lines)).rstrip("\n") + "\n"


def _message_markdown(message: Message, sampling: SamplingSettings | None) -> list[str]:
    who = {"user": "You", "assistant": "Assistant", "system": "System"}[message.role]
    if message.stats is not None:
        model = " ".join(part for part in (message.stats.setup.model, message.stats.setup.quant) if part)
        who += f" ({model})"
    lines = [f"## {who} · {_clock(message.created_at)}", ""]
    if message.thinking.strip():
        # Folded, as in the app; a blank line after <summary> lets Markdown inside it render.
        lines += ["<details><summary>thinking</summary>", "", *_quoted(message.thinking.rstrip("\n")), "",
                  "</details>", ""]  # fmt: skip
    # Cleaned here, not only with the whole file, so the fence check sees the lines as saved.
    body = clean_text(message.content).rstrip("\n")
    lines.append(body if body else "*(no text)*")
    # A reply stopped inside a code block would swallow everything after it; close the fence.
    if (closing := _unclosed_fence(body)) is not None:
        lines.append(closing)
    lines.append("")
    notes: list[str] = []
    if message.stats is not None:
        notes.append(f"setup: {_setup_line(message.stats.setup)}")
        notes.append(f"speed: {_stats_line(message.stats)}")
    if sampling is not None:
        notes.append(f"sampling: {_sampling_line(sampling)}")
    if message.state is ReplyState.ERROR:
        notes.append(f"state: failed: {message.error or 'unknown error'}")
    elif (note := reply_end_note(message.state, message.stats)) is not None:
        notes.append(f"state: {note}")
    if notes:
        lines += [f"> - {note}" for note in notes]
        lines.append("")
    return lines


@functools.cache
def _block_parser() -> MarkdownIt:
    # Only block structure decides where a fence ends; inline parsing would cost the most.
    return MarkdownIt("commonmark").disable("inline")


def _unclosed_fence(body: str) -> str | None:
    """The line that closes a fenced code block ``body`` leaves open at its end, or None.

    Counting lines that start with three backticks is not enough: an indented line or a
    ``~~~`` or longer fence can hold three backticks, and a ``~~~`` fence needs its own marker.
    """
    if "```" not in body and "~~~" not in body:  # no fence at all: skip the parse
        return None
    tokens = _block_parser().parse(body)
    fence = tokens[-1] if tokens else None
    if fence is None or fence.type != "fence" or fence.map is None:
        return None
    start, end = fence.map
    lines = body.split("\n")  # markdown-it's own line breaks, not str.splitlines's
    if end < len(lines):
        return None
    last = lines[-1]
    marker = re.escape(fence.markup[0])
    closed = end - 1 > start and re.fullmatch(rf" {{0,3}}{marker}{{{len(fence.markup)},}}[ \t]*", last)
    return None if closed else fence.markup


def _model_label(setup: RunSetup) -> str:
    if setup.backend is BackendKind.OPENAI:
        # The same model id can be served by several machines: the server is part of its name.
        where = f"{setup.server_kind or setup.backend} at {setup.server or '?'}"
        return " · ".join(w for w in (setup.model, setup.quant, where) if w)
    # An Ollama host other than the local one is named, as in the reply's heading and /compare.
    return f"{setup.model} · {setup.quant} · {setup_parts(setup)['backend']}"


def _setup_line(setup: RunSetup) -> str:
    if setup.backend is BackendKind.OPENAI:
        # Layers, threads and batch are the server's own start-up flags: not known here.
        return f"{_model_label(setup)} · ctx {setup.n_ctx}"
    parts = [_model_label(setup), setup_layers(setup)]
    if setup.gpu_share is not None:
        parts.append(f"{setup.gpu_share * 100:.0f}% in GPU memory")
    parts.append(f"ctx {setup.n_ctx}")
    parts.append("threads auto" if setup.n_threads is None else fmt.counted(setup.n_threads, "thread"))
    parts.extend(tuning_parts(setup).values())
    return " · ".join(parts)


def _stats_line(stats: ReplyStats) -> str:
    parts = [f"{fmt.rate(stats.gen_tps)} tok/s", fmt.counted(stats.gen_tokens, "token")]
    parts.append(f"{fmt.seconds(stats.ttft_s)} to first token")
    if stats.prompt_tokens is not None:
        prompt = f"prompt {fmt.counted(stats.prompt_tokens, 'token')}"
        if stats.prompt_tokens_evaluated is not None and stats.prompt_cached:
            prompt += f" ({stats.prompt_tokens - stats.prompt_tokens_evaluated} from cache)"
        if stats.prompt_tps is not None:
            prompt += f" at {fmt.rate(stats.prompt_tps)} tok/s"
        parts.append(prompt)
    parts.append(f"{fmt.seconds(stats.total_s)} total")
    if stats.load_s is not None:
        parts.append(f"model load {fmt.seconds(stats.load_s)}")
    if stats.source.measured_here:
        parts.append(f"measured by lollma-tui ({stats.source})")
    return " · ".join(parts)


def _sampling_line(sampling: SamplingSettings) -> str:
    parts = [
        f"temperature {sampling.temperature:g}",
        f"top_p {sampling.top_p:g}",
        f"top_k {sampling.top_k}",
        f"min_p {sampling.min_p:g}",
        f"repeat penalty {sampling.repeat_penalty:g}",
        "seed random" if sampling.seed is None else f"seed {sampling.seed}",
        "no token limit"
        if sampling.max_tokens is None
        else f"max {fmt.counted(sampling.max_tokens, 'token')}",
    ]
    if sampling.stop:
        parts.append("stop at " + ", ".join(json.dumps(s, ensure_ascii=False) for s in sampling.stop))
    return " · ".join(parts)


def _quoted(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.strip("\n").splitlines()]


def _yaml_str(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any title.
    return json.dumps(text, ensure_ascii=False)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _clock(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
