"""The models the test server knows: what is installed, and what its "library" can pull.

A `ModelSpec` holds what Ollama derives from a GGUF and its manifest: the architecture's
hyper-parameters (for `/api/show` model_info), the quantization, the sizes of the manifest's
layers (for `/api/tags` and pull progress) and the capabilities.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .wire import go_quote, human_number

GIB = 1024**3

CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
THINKING_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n{{ if .Think }}<think>\n{{ end }}"
)

FILE_TYPES = {
    # Ollama's quantization_level → llama.cpp's general.file_type (gguf.LlamaFileType).
    **{"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10},
    **{"Q3_K_M": 12, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "IQ4_XS": 30, "BF16": 32},
}

_NAME = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/){0,2}[A-Za-z0-9][\w.-]*(?::\w[\w.-]{0,79})?$")


def normalize_name(name: str) -> str | None:
    """``"tinyllama"`` → ``"tinyllama:latest"``; None when Ollama would call the name invalid.

    Case is kept: installed names are matched case-insensitively, as Ollama does.
    """
    name = name.strip()
    if not _NAME.match(name):
        return None
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    """``sha256:<64 hex>``."""
    size: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Full ``model:tag`` as /api/tags shows it."""
    architecture: str
    family: str
    parameter_count: int
    quantization_level: str
    block_count: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    feed_forward_length: int
    vocab_size: int
    weights_bytes: int
    capabilities: tuple[str, ...] = ("completion",)
    template: str = CHATML_TEMPLATE
    system: str = ""
    license: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Modelfile PARAMETER values; list values repeat the key (``stop``)."""
    extra_model_info: dict[str, Any] = field(default_factory=dict)
    gguf_path: Path | None = None
    """The GGUF a real engine loads; None for specs only the scripted engine serves."""
    modified_ns: int = field(default_factory=time.time_ns)
    weights_digest: str = ""

    @property
    def parameter_size(self) -> str:
        return human_number(self.parameter_count)

    @property
    def file_type(self) -> int:
        return FILE_TYPES.get(self.quantization_level, 15)

    @property
    def layers(self) -> tuple[Layer, ...]:
        weights = self.weights_digest or _digest(
            self.architecture, str(self.parameter_count), self.quantization_level
        )
        layers = [Layer("application/vnd.ollama.image.model", f"sha256:{weights}", self.weights_bytes)]
        if self.template:
            layers.append(
                Layer(
                    "application/vnd.ollama.image.template",
                    f"sha256:{_digest(self.template)}",
                    len(self.template),
                )
            )
        if self.parameters:
            params = self.parameters_json()
            layers.append(
                Layer("application/vnd.ollama.image.params", f"sha256:{_digest(params)}", len(params))
            )
        if self.license:
            layers.append(
                Layer(
                    "application/vnd.ollama.image.license",
                    f"sha256:{_digest(self.license)}",
                    len(self.license),
                )
            )
        return tuple(layers)

    @property
    def size(self) -> int:
        """What /api/tags reports: the sum of every manifest layer, not just the GGUF."""
        return sum(layer.size for layer in self.layers) + 485  # + the config blob

    @property
    def digest(self) -> str:
        """The manifest digest, hex without the ``sha256:`` prefix, as /api/tags shows it."""
        return _digest(self.name, *(layer.digest for layer in self.layers))

    def parameters_json(self) -> str:
        return "{" + ",".join(f'"{k}":{go_quote(v)}' for k, v in sorted(self.parameters.items())) + "}"

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }

    def model_info(self) -> dict[str, Any]:
        """The GGUF key/value map minus general.name and tokenizer.chat_template, long arrays emptied."""
        arch = self.architecture
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.basename": self.family,
            "general.file_type": self.file_type,
            "general.parameter_count": self.parameter_count,
            "general.quantization_version": 2,
            f"{arch}.attention.head_count": self.head_count,
            f"{arch}.attention.head_count_kv": self.head_count_kv,
            f"{arch}.attention.layer_norm_rms_epsilon": 1e-05,
            f"{arch}.block_count": self.block_count,
            f"{arch}.context_length": self.context_length,
            f"{arch}.embedding_length": self.embedding_length,
            f"{arch}.feed_forward_length": self.feed_forward_length,
            f"{arch}.rope.freq_base": 10000,
            f"{arch}.vocab_size": self.vocab_size,
            "tokenizer.ggml.bos_token_id": 1,
            "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.model": "llama" if arch == "llama" else "gpt2",
            "tokenizer.ggml.tokens": [],
            "tokenizer.ggml.token_type": [],
        }
        info.update(self.extra_model_info)
        return dict(sorted(info.items()))

    def parameters_text(self) -> str:
        lines: list[str] = []
        for key, value in self.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{key:<30} {go_quote(item)}")
        return "\n".join(lines)

    def modelfile(self) -> str:
        weights = self.layers[0].digest.replace(":", "-")
        text = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {self.name}\n\n"
            f"FROM /root/.ollama/models/blobs/{weights}\n"
        )
        if self.template:
            text += f'TEMPLATE """{self.template}"""\n'
        if self.system:
            text += f'SYSTEM """{self.system}"""\n'
        for key, value in self.parameters.items():
            for item in value if isinstance(value, list) else [value]:
                text += f"PARAMETER {key} {item}\n"
        if self.license:
            text += f'LICENSE """{self.license}"""\n'
        return text

    def tensors(self) -> list[dict[str, Any]]:
        # The real server lists every tensor; a representative few keep responses small.
        ftype = "Q4_K" if self.quantization_level.startswith("Q4") else self.quantization_level
        return [
            {"name": "token_embd.weight", "type": ftype, "shape": [self.embedding_length, self.vocab_size]},
            {
                "name": "blk.0.attn_q.weight",
                "type": ftype,
                "shape": [self.embedding_length, self.embedding_length],
            },
            {"name": "output_norm.weight", "type": "F32", "shape": [self.embedding_length]},
        ]


def _tinyllama(tag: str, quant: str, weights: int) -> ModelSpec:
    return ModelSpec(
        name=f"tinyllama:{tag}",
        architecture="llama",
        family="llama",
        parameter_count=1_100_048_384,
        quantization_level=quant,
        block_count=22,
        context_length=2048,
        embedding_length=2048,
        head_count=32,
        head_count_kv=4,
        feed_forward_length=5632,
        vocab_size=32000,
        weights_bytes=weights,
        template=CHATML_TEMPLATE,
        system="You are a helpful AI assistant.",
        license="Apache License 2.0",
        parameters={"stop": ["<|im_start|>", "<|im_end|>"]},
    )


TINYLLAMA_Q4 = _tinyllama("1b-q4_K_M", "Q4_K_M", 667_815_104)
TINYLLAMA_Q8 = _tinyllama("1b-q8_0", "Q8_0", 1_169_807_648)
TINYLLAMA_F16 = _tinyllama("1b-fp16", "F16", 2_201_017_632)

QWEN3_THINKING = ModelSpec(
    name="qwen3:0.6b",
    architecture="qwen3",
    family="qwen3",
    parameter_count=751_632_384,
    quantization_level="Q4_K_M",
    block_count=28,
    context_length=40960,
    embedding_length=1024,
    head_count=16,
    head_count_kv=8,
    feed_forward_length=3072,
    vocab_size=151936,
    weights_bytes=522_653_767,
    capabilities=("completion", "tools", "thinking"),
    template=THINKING_TEMPLATE,
    parameters={"repeat_penalty": 1, "stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0.6, "top_k": 20},
)

SMOLLM2 = ModelSpec(
    name="smollm2:135m",
    architecture="llama",
    family="llama",
    parameter_count=134_515_008,
    quantization_level="F16",
    block_count=30,
    context_length=8192,
    embedding_length=576,
    head_count=9,
    head_count_kv=3,
    feed_forward_length=1536,
    vocab_size=49152,
    weights_bytes=270_898_112,
    parameters={"stop": ["<|im_start|>", "<|im_end|>"]},
)


def default_installed() -> list[ModelSpec]:
    """Three quantizations of one model plus a thinking-capable one, as a user might have pulled."""
    return [TINYLLAMA_Q4, TINYLLAMA_Q8, TINYLLAMA_F16, QWEN3_THINKING]


def default_library() -> list[ModelSpec]:
    """What a pull can fetch: everything installed by default plus a model that is not."""
    return [*default_installed(), SMOLLM2]


def spec_from_gguf(path: Path, name: str, **overrides: Any) -> ModelSpec:
    """Describe a real GGUF file (e.g. the tiny test model) so a real engine can serve it."""
    from gguf import GGUFReader  # the tests' own dependency, imported only when needed

    reader = GGUFReader(str(path))

    def value(key: str, default: Any = None) -> Any:
        found = reader.fields.get(key)
        return default if found is None else found.contents()

    arch = str(value("general.architecture", "llama"))
    parameter_count = int(sum(int(t.n_elements) for t in reader.tensors))
    file_type = int(value("general.file_type", 1))
    quant = {v: k for k, v in FILE_TYPES.items()}.get(file_type, "F16")
    extra: dict[str, Any] = {}
    for key, found in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.name", "tokenizer.chat_template"):
            continue
        contents = found.contents()
        extra[key] = [] if isinstance(contents, list) and len(contents) > 5 else contents
    spec = ModelSpec(
        name=name,
        architecture=arch,
        family=arch,
        parameter_count=parameter_count,
        quantization_level=quant,
        block_count=int(value(f"{arch}.block_count", 1)),
        context_length=int(value(f"{arch}.context_length", 2048)),
        embedding_length=int(value(f"{arch}.embedding_length", 0)),
        head_count=int(value(f"{arch}.attention.head_count", 1)),
        head_count_kv=int(value(f"{arch}.attention.head_count_kv", 1)),
        feed_forward_length=int(value(f"{arch}.feed_forward_length", 0)),
        vocab_size=len(value("tokenizer.ggml.tokens", [])),
        weights_bytes=path.stat().st_size,
        extra_model_info=extra,
        gguf_path=path,
        weights_digest=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    return replace(spec, **overrides) if overrides else spec


class ModelRegistry:
    """Installed models and the pullable library; names match case-insensitively, like Ollama's."""

    def __init__(self, installed: list[ModelSpec], library: list[ModelSpec]) -> None:
        self._lock = threading.Lock()
        self._installed = {spec.name.lower(): spec for spec in installed}
        self._library = {spec.name.lower(): spec for spec in library}

    def find(self, name: str) -> ModelSpec | None:
        """An installed model by any casing of ``model:tag`` (the tag defaults to latest)."""
        full = normalize_name(name)
        if full is None:
            return None
        with self._lock:
            return self._installed.get(full.lower())

    def find_in_library(self, name: str) -> ModelSpec | None:
        full = normalize_name(name)
        if full is None:
            return None
        with self._lock:
            return self._library.get(full.lower()) or self._installed.get(full.lower())

    def installed(self) -> list[ModelSpec]:
        with self._lock:
            return list(self._installed.values())

    def install(self, spec: ModelSpec) -> None:
        with self._lock:
            self._installed[spec.name.lower()] = spec
            self._library.setdefault(spec.name.lower(), spec)

    def remove(self, name: str) -> ModelSpec | None:
        full = normalize_name(name)
        if full is None:
            return None
        with self._lock:
            return self._installed.pop(full.lower(), None)
