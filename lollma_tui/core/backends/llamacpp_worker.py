"""The llama.cpp worker process: the only module that imports llama_cpp.

Run as ``python -m lollma_tui.core.backends.llamacpp_worker --log FILE``. It speaks the line
protocol of `llamacpp_protocol` on its original stdout and sends everything else llama.cpp or
Python prints (fd 1 and fd 2) to the log file, so nothing ever reaches the app's terminal.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from lollma_tui.core.backends import llamacpp_protocol as proto
from lollma_tui.core.backends.base import ChatMessage
from lollma_tui.core.backends.chat_formats import adapt_messages, format_for_architecture
from lollma_tui.core.backends.repack import crash_if_asked, log_position, repacked_since, set_repack
from lollma_tui.core.backends.think_tags import CLOSE, ThinkSplitter, opens_thinking
from lollma_tui.core.settings import AUTO, MAX_SEED, LoadSettings, SamplingSettings
from lollma_tui.core.workers.channel import Channel, finish, open_channel
from lollma_tui.core.workers.logs import OWN_NOTE_PREFIX
from lollma_tui.core.workers.reasons import error_reason

_KV_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}


CONTEXT_STEP = 256
"""llama.cpp makes every context a multiple of this. llama-cpp-python keeps room for as many
tokens as it was asked: given 300, past 300 tokens of a context of 512 every reply failed with
"could not broadcast input array", while the context meter showed room left. It is asked the
size llama.cpp makes (the model card says "asked 300")."""


def context_made(asked: int) -> int:
    return -(-asked // CONTEXT_STEP) * CONTEXT_STEP


DELTA_EVERY_S = 0.04
"""The most often the reply's text is sent to the app while it streams."""


def reply_seed(sampling: SamplingSettings) -> int:
    """The seed for one reply. Without one, llama-cpp-python derives each reply's seed from the
    last with a fixed generator, so every load replayed the same "random" replies."""
    return sampling.seed if sampling.seed is not None else secrets.randbelow(MAX_SEED + 1)


def _locked_bytes() -> int | None:
    """Memory this process has locked (Linux: VmLck); None where that cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmLck:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Cancelled(Exception):
    """Raised inside prompt evaluation when the app asked to stop."""


class DeltaBatcher:
    """A reply's tokens sent to the app together, at most every `DELTA_EVERY_S`.

    A line per token wakes the app for every token (its reader, its reply loop, the live
    figures): at 100-200 tok/s on a small machine that is CPU taken from llama.cpp's own
    threads. Tokens that come within the interval wait for the next one (never longer than
    that token takes), and the first token goes at once, so the reply starts as soon as it can.
    """

    def __init__(self, channel: Channel, request_id: int, splitter: ThinkSplitter) -> None:
        self._channel = channel
        self._request_id = request_id
        self._splitter = splitter
        # A reply's think block comes before its answer, so within one message thinking does too.
        self._pending: dict[str, list[str]] = {"thinking": [], "text": []}
        self._count = 0
        self._made_at = 0.0
        self._sent_at = float("-inf")

    def add(self, text: str, count: int) -> None:
        """`text` of the reply, `count` tokens into it."""
        for kind, piece in self._splitter.feed(text):
            self._pending[kind].append(piece)
        self._count = count
        self._made_at = time.monotonic()
        if self._made_at - self._sent_at >= DELTA_EVERY_S:
            self.flush()

    def flush(self, *, last: bool = False) -> None:
        """Send what is waiting (before an error or a stop; `last` at the reply's end, when a
        held-back half tag is text after all)."""
        if last:
            for kind, piece in self._splitter.flush():
                self._pending[kind].append(piece)
        thinking, text = ("".join(self._pending[kind]) for kind in ("thinking", "text"))
        if not thinking and not text:
            return
        for pieces in self._pending.values():
            pieces.clear()
        self._sent_at = self._made_at
        event: dict[str, Any] = {"ev": proto.EV_DELTA, "id": self._request_id, "text": text}
        if thinking:
            event["thinking"] = thinking
        self._channel.send({**event, "n": self._count, "t": self._made_at})


def _make_engine_class() -> type:
    """Build the Llama subclass lazily so importing this module stays cheap."""
    import llama_cpp

    class Engine(llama_cpp.Llama):
        """Llama that can stop between prompt batches and between tokens, and counts tokens."""

        cancel_event: threading.Event = threading.Event()
        prompt_tokens = 0
        sampled = 0
        first_token_at = 0.0
        last_token_at = 0.0

        def eval(self, tokens: Sequence[int]) -> None:
            # Evaluating a long prompt batch by batch lets a stop land between batches instead
            # of after the whole prompt.
            step = max(1, self.n_batch)
            for start in range(0, len(tokens), step):
                if self.cancel_event.is_set():
                    raise Cancelled
                super().eval(tokens[start : start + step])

        continue_text = ""
        """Set before a chat completion to continue this text as the assistant's turn."""

        def create_completion(self, prompt: str | list[int], *args: Any, **kwargs: Any) -> Any:
            # The chat handlers format the conversation, tokenize it and call this; appending the
            # unfinished reply here makes the model continue it rather than start a new turn.
            extra, self.continue_text = self.continue_text, ""
            if extra:
                end = prompt if isinstance(prompt, str) else self._text_of(prompt[-8:])
                # A template that opens the reply's think block (DeepSeek-R1's) would have the
                # saved answer go on as thoughts: the block is closed first, empty, as such a
                # template writes earlier replies.
                close = f"\n{CLOSE}\n\n" if opens_thinking(end) else ""
                if isinstance(prompt, str):
                    prompt = prompt + close + extra
                else:
                    closing = self.tokenize(close.encode(), add_bos=False, special=True) if close else []
                    prompt = [*prompt, *closing, *self.tokenize(extra.encode(), add_bos=False, special=False)]
            return super().create_completion(prompt, *args, **kwargs)

        prompt_opens_thinking = False
        """Whether the chat template ended the prompt inside a think block (DeepSeek-R1's)."""

        def _text_of(self, tokens: Sequence[int]) -> str:
            return str(self.detokenize(list(tokens), special=True).decode(errors="replace"))

        def generate(
            self, tokens: Sequence[int], *args: Any, **kwargs: Any
        ) -> Generator[int, Sequence[int] | None, None]:
            self.prompt_tokens = len(tokens)
            self.prompt_opens_thinking = opens_thinking(self._text_of(tokens[-8:]))
            for token in super().generate(tokens, *args, **kwargs):
                if self.cancel_event.is_set():
                    return
                if llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                    # The end-of-text token is no part of the reply (nor of llama.cpp's count).
                    yield token
                    continue
                now = time.perf_counter()
                if self.sampled == 0:
                    self.first_token_at = now
                self.sampled += 1
                self.last_token_at = now
                yield token

    return Engine


def quant_name(file_type: str | None) -> str:
    if file_type is None:
        return "unknown"
    try:
        from gguf import LlamaFileType

        name = LlamaFileType(int(file_type)).name
    except (ValueError, ImportError):
        return f"type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _takes_system_role(llm: Any, metadata: dict[str, str]) -> bool:
    """Whether the GGUF's chat template renders a system message. Gemma 2's and Mistral's raise
    "System role not supported": with a system prompt set, every reply failed."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def text(token: int) -> str:
        return str(llm._model.token_get_text(token)) if token != -1 else ""

    try:
        formatter = Jinja2ChatFormatter(
            template=metadata["tokenizer.chat_template"],
            eos_token=text(llm.token_eos()),
            bos_token=text(llm.token_bos()),
        )
        formatter(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    except Exception:  # whatever a template raises, it refused
        return False
    return True


class Worker:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.llm: Any = None
        self.chat_format = ""
        self.no_system_role = False
        """The GGUF's own template refuses system messages: the system prompt is folded in."""
        self.repack = True
        self.engine_class = _make_engine_class()

    def load(self, request: dict[str, Any]) -> None:
        import llama_cpp

        request_id = int(request["id"])
        settings = proto.load_settings_from_wire(request["settings"])
        self.repack = bool(request.get("repack", True))
        set_repack(llama_cpp, self.repack)
        started = time.perf_counter()
        log_at = log_position()
        try:
            if not _utf8(settings.model):
                raise ValueError("its file name is not UTF-8, which llama.cpp cannot open: rename the file")
            self.llm = self._construct(settings, llama_cpp)
        except Exception as error:  # anything left uncaught ended the worker
            # The app adds what llama.cpp logged about it. A chat template Jinja cannot read
            # raised out of here: the worker died, and the crash was taken for a repack crash.
            self.channel.send(
                {
                    "ev": proto.EV_ERROR,
                    "id": request_id,
                    "kind": proto.ERR_LOAD,
                    "message": error_reason(error),
                }
            )
            return
        llm = self.llm
        metadata: dict[str, str] = dict(llm.metadata)
        architecture = metadata.get("general.architecture", "unknown")
        has_template = "tokenizer.chat_template" in metadata
        notes: list[str] = []
        self.no_system_role = False
        if has_template:
            self.chat_format = str(llm.chat_format)
            if self.chat_format == "chat_template.default" and not _takes_system_role(llm, metadata):
                self.no_system_role = True
                notes.append(
                    "its chat template takes no system message: the system prompt opens the first one"
                )
        else:
            self.chat_format = format_for_architecture(architecture)
            llm.chat_format = self.chat_format
            note = (
                f"{os.path.basename(settings.model)} has no chat template; "
                f"using the '{self.chat_format}' format for architecture '{architecture}'"
            )
            notes.append(note)
            print(f"{OWN_NOTE_PREFIX} {note}", file=sys.stderr, flush=True)
        self._warm_up(llm)
        # Allowed is not done: llama.cpp repacks only the tensor types its CPU kernels take (Q4_0
        # on most CPUs, not Q4_1 or Q8_0), and says which buffers it made in its log.
        repacked = self.repack and repacked_since(log_at)
        if settings.use_mlock and (locked := _locked_bytes()) is not None and locked < llm._model.size() // 2:
            # llama.cpp only warns in its log, and runs unlocked: say so where the user looks.
            notes.append(
                f"use_mlock is on, but only {locked >> 20} MiB of the model is locked in RAM: raise the "
                "memlock limit (ulimit -l; LimitMEMLOCK= under systemd) or give the app CAP_IPC_LOCK"
            )
        n_layers = _int_or_none(metadata.get(f"{architecture}.block_count"))
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        requested = settings.n_gpu_layers
        if not offload:
            on_gpu = 0
        elif requested == AUTO or requested == -1:
            on_gpu = (n_layers + 1) if n_layers is not None else -1
        else:
            on_gpu = min(int(requested), (n_layers + 1) if n_layers is not None else int(requested))
        self.channel.send(
            {
                "ev": proto.EV_LOADED,
                "id": request_id,
                "model": {
                    "name": metadata.get("general.name") or os.path.basename(settings.model),
                    "architecture": architecture,
                    "quant": quant_name(metadata.get("general.file_type")),
                    "n_layers": n_layers,
                    "n_ctx": int(llm.n_ctx()),
                    "n_ctx_train": _int_or_none(metadata.get(f"{architecture}.context_length")),
                    "n_gpu_layers": on_gpu,
                    "gpu_offload_supported": offload,
                    "chat_format": self.chat_format,
                    "chat_format_source": "gguf" if has_template else "architecture",
                    "size_bytes": int(llm._model.size()),
                    "n_params": int(llm._model.n_params()),
                    "load_s": time.perf_counter() - started,
                    "n_threads": int(llm.n_threads) if hasattr(llm, "n_threads") else settings.n_threads,
                    "n_threads_batch": int(llama_cpp.llama_n_threads_batch(llm.ctx)),
                    "n_batch": int(llama_cpp.llama_n_batch(llm.ctx)),
                    "repack": repacked,
                    "notes": notes,
                },
            }
        )

    def _construct(self, settings: LoadSettings, llama_cpp: Any) -> Any:
        if not os.path.isfile(settings.model):
            raise ValueError(f"Model file not found: {settings.model}")
        threads = settings.n_threads or default_threads()
        gpu_layers = settings.n_gpu_layers
        if gpu_layers == AUTO:
            gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        kv_type = _KV_TYPE_IDS[settings.kv_cache_type]
        return self.engine_class(
            model_path=settings.model,
            n_gpu_layers=int(gpu_layers),
            n_ctx=context_made(settings.n_ctx),
            n_batch=settings.n_batch,
            n_ubatch=min(settings.n_batch, 512),
            n_threads=threads,
            # Threads asked for are the threads used, prompt included (as bench measures them);
            # "auto" lets the prompt, which gains from every core, have them all.
            n_threads_batch=threads if settings.n_threads else max(threads, os.cpu_count() or threads),
            flash_attn=settings.flash_attn,
            type_k=kv_type,
            type_v=kv_type,
            use_mmap=settings.use_mmap,
            use_mlock=settings.use_mlock,
            # verbose=True keeps llama-cpp-python from dup2()ing /dev/null over fd 2, so the
            # load log lands in our log file, and makes it reset perf counters per request.
            verbose=True,
        )

    def _warm_up(self, llm: Any) -> None:
        import llama_cpp

        # The first decode pays one-off costs (buffer allocation, weight repacking); pay them
        # at load time so the first reply's time to first token is honest.
        bos = llm.token_bos()
        token = bos if bos >= 0 else 0
        crash_if_asked("load", self.repack)
        llm.eval([token, token])
        llm.eval([token])
        # Perf counters only advance at a synchronize: without one the warm-up tokens would be
        # counted into the first reply's prompt figures.
        llama_cpp.llama_synchronize(llm.ctx)
        llm.reset()
        llm._ctx.kv_cache_clear()
        llm._ctx.reset_timings()

    def chat(self, request: dict[str, Any]) -> None:
        import llama_cpp

        request_id = int(request["id"])
        cancel = self.channel.begin(request_id)
        try:
            if self.llm is None:
                self.channel.send(
                    {
                        "ev": proto.EV_ERROR,
                        "id": request_id,
                        "kind": proto.ERR_GENERATION,
                        "message": "No model is loaded",
                    }
                )
                return
            llm = self.llm
            sampling = proto.sampling_from_wire(request["sampling"])
            messages = [ChatMessage(m["role"], m["content"]) for m in request["messages"]]
            continuing = bool(messages) and messages[-1].role == "assistant"
            if continuing:
                llm.continue_text = messages.pop().content
            messages = adapt_messages(messages, self.chat_format, no_system_role=self.no_system_role)
            llm.cancel_event = cancel
            llm.sampled = 0
            llm.prompt_tokens = 0
            llm._ctx.reset_timings()
            crash_if_asked("reply", self.repack)
            finish = "length"
            deltas: DeltaBatcher | None = None
            try:
                for chunk in self._stream(llm, messages, sampling):
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if deltas is None:  # the prompt is known once the first chunk comes
                        splitter = ThinkSplitter(thinking=llm.prompt_opens_thinking, answering=continuing)
                        deltas = DeltaBatcher(self.channel, request_id, splitter)
                    if text:
                        deltas.add(text, llm.sampled)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
            except Cancelled:
                pass
            except Exception as error:  # a chat template's own error ended the worker
                if deltas is not None:
                    deltas.flush()
                kind = proto.ERR_CONTEXT if "exceed context window" in str(error) else proto.ERR_GENERATION
                self.channel.send(
                    {"ev": proto.EV_ERROR, "id": request_id, "kind": kind, "message": error_reason(error)}
                )
                return
            if deltas is not None:
                deltas.flush(last=True)
            if cancel.is_set():
                finish = "cancelled"
            perf = llama_cpp.llama_perf_context(llm.ctx)
            figures = proto.WorkerReplyFigures(
                finish_reason=finish,
                prompt_tokens=int(llm.prompt_tokens),
                prompt_tokens_evaluated=int(perf.n_p_eval),
                prompt_ms=float(perf.t_p_eval_ms),
                gen_tokens=int(llm.sampled),
                gen_s=max(0.0, llm.last_token_at - llm.first_token_at) if llm.sampled else 0.0,
            )
            self.channel.send({"ev": proto.EV_DONE, "id": request_id, "figures": figures.to_wire()})
        finally:
            self.channel.end()

    def _stream(self, llm: Any, messages: list[ChatMessage], sampling: SamplingSettings) -> Iterator[Any]:
        return iter(
            llm.create_chat_completion(
                messages=proto.messages_to_wire(messages),
                stream=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                min_p=sampling.min_p,
                repeat_penalty=sampling.repeat_penalty,
                seed=reply_seed(sampling),
                max_tokens=sampling.max_tokens,
                stop=list(sampling.stop),
            )
        )

    def tokenize(self, request: dict[str, Any]) -> None:
        request_id = int(request["id"])
        count = None
        if self.llm is not None:
            text = str(request.get("text", ""))
            count = len(self.llm.tokenize(text.encode(), add_bos=False, special=False))
        self.channel.send({"ev": proto.EV_TOKENS, "id": request_id, "count": count})

    def serve(self) -> None:
        while True:
            request = self.channel.requests.get()
            op = request.get("op")
            if op == proto.OP_SHUTDOWN:
                return
            if op == proto.OP_LOAD:
                self.load(request)
            elif op == proto.OP_CHAT:
                self.chat(request)
            elif op == proto.OP_TOKENIZE:
                self.tokenize(request)
            else:
                self.channel.send(
                    {"ev": proto.EV_ERROR, "kind": proto.ERR_PROTOCOL, "message": f"unknown op {op!r}"}
                )


def default_threads() -> int:
    """Physical cores, as llama-bench uses; llama-cpp-python's own default is half the logical ones."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        physical = None
    return max(1, physical or os.cpu_count() or 1)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def system_info(llama_cpp: Any) -> str:
    """llama.cpp's own line of CPU features (``AMX_INT8 = 1``, ``REPACK = 1`` …)."""
    try:
        return bytes(llama_cpp.llama_print_system_info()).decode(errors="replace").strip()
    except (AttributeError, TypeError, OSError):
        return ""


def main() -> int:
    channel = open_channel()
    worker = Worker(channel)
    import llama_cpp

    channel.send(
        {
            "ev": proto.EV_HELLO,
            "pid": os.getpid(),
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "llama_cpp_version": getattr(llama_cpp, "__version__", "?"),
            "system_info": system_info(llama_cpp),
        }
    )
    channel.listen(sys.stdin.buffer)
    worker.serve()
    finish(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
