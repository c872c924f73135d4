"""Write small random-weight llama GGUF files that llama.cpp really loads.

Nothing binary is committed: tests build the models they need in a temp folder. The vocabulary
is a SentencePiece-style one (byte tokens plus a few word pieces), so any sampled token decodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, TokenType

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

WORDS = (
    "the",
    "a",
    "model",
    "token",
    "layer",
    "cache",
    "quant",
    "entangle",
    "quantum",
    "state",
    "light",
    "speed",
    "memory",
    "fast",
    "slow",
    "and",
    "of",
    "to",
    "is",
    "in",
    "it",
    "that",
)


@dataclass(frozen=True)
class TinyModelSpec:
    n_embd: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 512
    n_ctx_train: int = 4096
    name: str = "tiny-llama"
    architecture: str = "llama"
    """Another name writes a llama model under an architecture llama.cpp may not know."""
    chat_template: str | None = CHATML_TEMPLATE
    file_type: LlamaFileType = LlamaFileType.MOSTLY_F16
    seed: int = 0
    split_max_tensors: int = 0
    """Above 0, written as llama.cpp's split parts (``…-00001-of-0000N.gguf``), this many tensors each."""
    script: tuple[str, ...] = ()
    """Tokens the model writes, in order, then ends (see `_script_weights`); random if empty."""


def _vocab(extra: tuple[str, ...] = ()) -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    # Byte tokens for ASCII only: a random model that samples lone high bytes produces text
    # llama-cpp-python must hold back as invalid UTF-8, and its stream then stalls for seconds.
    tokens += [f"<0x{b:02X}>" for b in range(128)]
    types += [TokenType.BYTE] * 128
    tokens += [f"▁b{b}" for b in range(128, 256)]
    types += [TokenType.NORMAL] * 128
    pieces = [f"▁{w}" for w in WORDS] + list("abcdefghijklmnopqrstuvwxyz") + ["▁"]
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    # Tokens a script needs that the pieces lack (think tags), written as text, as Qwen3's are.
    added = [token for token in extra if token not in tokens]
    tokens += added
    types += [TokenType.USER_DEFINED] * len(added)
    # Pad to a round size so embedding rows quantize cleanly.
    while len(tokens) < 512:
        tokens.append(f"▁w{len(tokens)}")
        types.append(TokenType.NORMAL)
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def write_tiny_gguf(path: Path, spec: TinyModelSpec = TinyModelSpec()) -> Path:
    """Write a llama-architecture GGUF described by `spec` to `path` and return the path."""
    rng = np.random.default_rng(spec.seed)
    float_type = np.float32 if spec.file_type == LlamaFileType.ALL_F32 else np.float16
    tokens, scores, types = _vocab(spec.script)
    n_vocab = len(tokens)
    head_dim = spec.n_embd // spec.n_head
    n_embd_kv = head_dim * spec.n_head_kv

    writer = GGUFWriter(str(path), spec.architecture, split_max_tensors=spec.split_max_tensors)
    writer.add_name(spec.name)
    writer.add_context_length(spec.n_ctx_train)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(int(spec.file_type))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    if spec.chat_template is not None:
        writer.add_chat_template(spec.chat_template)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(float_type)

    def norm(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    scripted = _script_weights(spec, tokens, rng) if spec.script else None
    if scripted is not None:
        weight = _zeros(float_type)  # nothing but the embedding reaches the output
    writer.add_tensor(
        "token_embd.weight", scripted[0].astype(float_type) if scripted else weight(n_vocab, spec.n_embd)
    )
    for i in range(spec.n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", norm(spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(spec.n_embd, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(n_embd_kv, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(n_embd_kv, spec.n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(spec.n_embd, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm(spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(spec.n_ff, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(spec.n_ff, spec.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(spec.n_embd, spec.n_ff))
    writer.add_tensor("output_norm.weight", norm(spec.n_embd))
    if scripted is not None:
        output = scripted[1].astype(float_type)
    else:
        output = weight(n_vocab, spec.n_embd)
        # A zero row gives EOS a logit of 0 while the best of the other 511 random rows is well
        # above it, so greedy decoding never ends a reply by itself: only a stop or the token
        # limit does.
        output[2, :] = 0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    first = writer.format_shard_names(path)[0]
    writer.close()
    return first


def _zeros(float_type: type) -> Callable[..., np.ndarray]:
    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=float_type)

    return zeros


def _script_weights(
    spec: TinyModelSpec, tokens: list[str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Embedding and output rows with which the model writes `spec.script` and then EOS.

    With every layer's weights zero, the hidden state is the current token's embedding, so the
    output matrix alone picks the next token: a chain of one-token steps. Each embedding is a
    random vector (near orthogonal to the others) plus a constant first component. The first
    scripted token's output row reads that constant, so it follows any token that is not in
    the script (the end of every prompt); each later row reads its predecessor's vector, which
    outscores that baseline.
    """
    n_vocab, n_embd = len(tokens), spec.n_embd
    embedding = rng.standard_normal((n_vocab, n_embd))
    embedding[:, 0] = 4.0
    output = np.zeros((n_vocab, n_embd))
    ids = [tokens.index(token) for token in spec.script]
    if len(set(ids)) != len(ids):
        raise ValueError("a script's tokens must differ: one token has one successor")
    output[ids[0], 0] = 30.0 / 4.0
    for previous, following in zip([*ids], [*ids[1:], 2], strict=True):
        row = embedding[previous].copy()
        row[0] = 0.0
        output[following] += row * (64.0 / n_embd)
    return embedding, output


SLOW_PREFILL_SPEC = TinyModelSpec(
    n_embd=512, n_layer=4, n_head=8, n_head_kv=4, n_ff=2048, n_ctx_train=16384, name="tiny-slow"
)
"""Big enough that a long prompt takes seconds to evaluate on one thread (for cancel tests)."""

KQUANT_SPEC = TinyModelSpec(n_embd=256, n_ff=512)
"""k-quants need rows that are multiples of 256."""


def quantize_gguf(source: Path, target: Path, file_type: LlamaFileType) -> Path:
    """Quantize `source` into `target` with llama.cpp's own quantizer (in this process)."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(file_type)
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize failed with {rc}"
    return target
