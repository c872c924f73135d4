"""The bench worker: one process per configuration, measuring as llama-bench does.

Started by `worker_client` as a `WorkerProcess`; it speaks `bench.protocol` over the worker
channel, so nothing llama.cpp prints reaches the terminal.

What is timed, following llama-bench: ``pp<N>`` is N random tokens (the first is BOS when the
vocabulary adds one) decoded in chunks of n_batch into an empty KV cache, then a synchronize;
``tg<N>`` is N single-token decodes of random tokens, each followed by a synchronize, with no
sampling. A depth first fills the cache with D random tokens, untimed. Every repetition starts
from a cleared cache; one untimed warm-up run comes first. Tokenization, sampling and model load
are not timed.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import time
from typing import Any

from lollma_tui.core.backends.repack import crash_if_asked, log_position, repacked_since, set_repack
from lollma_tui.core.bench import protocol as proto
from lollma_tui.core.bench.protocol import BenchRequest, BenchTest
from lollma_tui.core.workers.channel import Channel, finish, open_channel
from lollma_tui.core.workers.reasons import error_reason

_KV_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}


def _c_text(lib: Any, name: str, *args: Any) -> str:
    function = getattr(lib, name)
    function.restype = ctypes.c_char_p
    function.argtypes = [ctypes.c_void_p] * len(args)
    value = function(*args)
    return value.decode(errors="replace") if value else ""


def system_info(llama_cpp: Any) -> dict[str, Any]:
    """Build commit, backends and devices, read from ggml the way llama-bench reports them."""
    info: dict[str, Any] = {
        "llama_cpp_version": str(getattr(llama_cpp, "__version__", "")),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "build_commit": "",
        "backends": "CPU",
        "cpu_info": "",
        "gpu_info": "",
    }
    # ggml's symbols are reachable through libllama's handle (it links them); the wheel has no
    # Python binding for them. Any failure only costs the descriptive fields.
    try:
        lib = llama_cpp.llama_cpp._lib
        commit = lib.ggml_commit
        commit.restype = ctypes.c_char_p
        info["build_commit"] = (commit() or b"").decode(errors="replace")
        lib.ggml_backend_reg_count.restype = ctypes.c_size_t
        lib.ggml_backend_reg_get.restype = ctypes.c_void_p
        lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
        names = [
            _c_text(lib, "ggml_backend_reg_name", lib.ggml_backend_reg_get(i))
            for i in range(lib.ggml_backend_reg_count())
        ]
        accelerators = [n for n in names if n and n != "CPU"]
        info["backends"] = ",".join(accelerators) if accelerators else "CPU"
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        cpus: list[str] = []
        gpus: list[str] = []
        for i in range(lib.ggml_backend_dev_count()):
            device = lib.ggml_backend_dev_get(i)
            kind = lib.ggml_backend_dev_type(device)
            description = _c_text(lib, "ggml_backend_dev_description", device)
            # ggml device types: 0 CPU, 1 GPU, 2 integrated GPU, 3 accelerator.
            (cpus if kind == 0 else gpus if kind in (1, 2) else []).append(description)
        info["cpu_info"] = ", ".join(cpus)
        info["gpu_info"] = ", ".join(gpus)
    except (AttributeError, OSError, TypeError, ValueError) as error:
        print(f"lollma-tui bench: could not read ggml system info: {error}", file=sys.stderr)
    return info


def peak_rss_bytes() -> int | None:
    if sys.platform.startswith("linux"):
        # Linux's ru_maxrss starts at the parent's peak (it is copied at fork): a bench started
        # from a 600 MiB process said 675 MiB for a 60 MiB model. VmHWM is this process's own.
        from lollma_tui.core.bench.hardware_info import process_peak_rss

        return process_peak_rss(os.getpid())
    try:
        import resource
    except ImportError:
        return None
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # macOS: bytes


class Bench:
    def __init__(self, llama_cpp: Any, request: BenchRequest) -> None:
        self.llama_cpp = llama_cpp
        self.request = request
        self.rng = random.Random(request.seed)
        self.llm: Any = None

    def load(self) -> dict[str, Any]:
        r = self.request
        if not os.path.isfile(r.model):
            raise ValueError(f"Model file not found: {r.model}")
        started = time.perf_counter()
        set_repack(self.llama_cpp, r.repack)
        log_at = log_position()
        self.llm = self.llama_cpp.Llama(
            model_path=r.model,
            n_gpu_layers=r.n_gpu_layers,
            n_ctx=r.n_ctx,
            n_batch=r.n_batch,
            n_ubatch=r.n_ubatch,
            n_threads=r.n_threads,
            n_threads_batch=r.n_threads,
            flash_attn=r.flash_attn,
            type_k=_KV_TYPE_IDS[r.type_k],
            type_v=_KV_TYPE_IDS[r.type_v],
            use_mmap=r.use_mmap,
            logits_all=False,
            # verbose=True: no dup2 of /dev/null over fd 2, so llama.cpp's log reaches our log file.
            verbose=True,
        )
        llm = self.llm
        crash_if_asked("load", r.repack)
        buffer = ctypes.create_string_buffer(256)
        self.llama_cpp.llama_model_desc(llm.model, buffer, ctypes.sizeof(buffer))
        self.n_vocab = int(llm.n_vocab())
        self.bos = int(llm.token_bos())
        self.add_bos = bool(llm._model.add_bos_token()) and self.bos >= 0
        return {
            "model_type": buffer.value.decode(errors="replace"),
            "model_size": int(llm._model.size()),
            "model_n_params": int(llm._model.n_params()),
            "n_layers": int(self.llama_cpp.llama_model_n_layer(llm.model)),
            "n_ctx": int(llm.n_ctx()),
            "n_vocab": self.n_vocab,
            "load_s": time.perf_counter() - started,
            # What llama.cpp did: a BF16 file asked for "repack on" has nothing to repack.
            "repacked": r.repack and repacked_since(log_at),
        }

    def _random(self) -> int:
        return self.rng.randrange(self.n_vocab)

    def _sync(self) -> None:
        # Llama.eval does not read the logits, so without this the decode may still be running.
        self.llama_cpp.llama_synchronize(self.llm.ctx)

    def _clear(self) -> None:
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()

    def _prompt(self, n_tokens: int) -> None:
        first = self.bos if self.add_bos else self._random()
        tokens = [first] + [self._random() for _ in range(n_tokens - 1)]
        # Llama.eval decodes in chunks of n_batch, exactly llama-bench's test_prompt.
        self.llm.eval(tokens)
        self._sync()

    def _generate(self, n_tokens: int) -> None:
        token = self.bos if self.add_bos else self._random()
        for _ in range(n_tokens):
            self.llm.eval([token])
            self._sync()
            token = self._random()

    def run_once(self, test: BenchTest) -> int:
        """One repetition: cleared cache, untimed depth fill, then the timed test (ns)."""
        self._clear()
        if test.n_depth:
            self._prompt(test.n_depth)
        started = time.perf_counter_ns()
        if test.n_prompt:
            self._prompt(test.n_prompt)
        if test.n_gen:
            self._generate(test.n_gen)
        return time.perf_counter_ns() - started

    def warm_up(self, test: BenchTest) -> None:
        # As llama-bench: a full prompt for pp tests, a single token for tg tests.
        self._clear()
        if test.n_prompt:
            self._prompt(test.n_prompt)
        if test.n_gen:
            self._generate(1)


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run(channel: Channel, request: BenchRequest, llama_cpp: Any) -> None:
    bench = Bench(llama_cpp, request)
    try:
        loaded = bench.load()
    except Exception as error:  # a chat template Jinja cannot read ended the worker at shutdown
        channel.send({"ev": proto.EV_ERROR, "kind": "load", "message": error_reason(error)})
        return
    channel.send({"ev": proto.EV_LOADED, **loaded})
    for index, test in enumerate(request.tests):
        test_time = _utc_now()
        if request.warmup:
            bench.warm_up(test)
        samples: list[int] = []
        for rep in range(request.repetitions):
            ns = bench.run_once(test)
            samples.append(ns)
            channel.send({"ev": proto.EV_SAMPLE, "test": index, "rep": rep, "ns": ns})
        channel.send(
            {
                "ev": proto.EV_TEST_DONE,
                "test": index,
                "samples_ns": samples,
                "test_time": test_time,
                "peak_rss_bytes": peak_rss_bytes(),
            }
        )
    channel.send({"ev": proto.EV_DONE, "peak_rss_bytes": peak_rss_bytes()})


def main() -> int:
    channel = open_channel()
    import llama_cpp

    # Hello first: the parent needs gpu_offload to resolve "auto" GPU layers before it asks.
    channel.send({"ev": proto.EV_HELLO, "pid": os.getpid(), **system_info(llama_cpp)})
    channel.listen(sys.stdin.buffer)
    message = channel.requests.get()
    if message.get("op") == proto.OP_BENCH:
        run(channel, BenchRequest.from_wire(message), llama_cpp)
    finish(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
