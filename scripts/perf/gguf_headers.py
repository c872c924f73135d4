"""Time lollma-tui's GGUF header reader against gguf.GGUFReader on the same files.

    uv run python scripts/perf/gguf_headers.py                # 100 files, one with a 152k vocab
    uv run python scripts/perf/gguf_headers.py --realistic    # every file has a real-size vocab
    uv run python scripts/perf/gguf_headers.py --demo PATH    # add a real model file
    uv run python scripts/perf/gguf_headers.py --quick        # 5 files, one pass

Files are generated with the `gguf` package into a temporary folder (tiny tensors, real-size
vocabularies): by default 99 small llama files (512-token vocabularies, 2-32 layers) and one
Qwen-2.5-like file with 151,936 tokens and 151,387 merges. `--realistic` gives every file a
vocabulary drawn from common models (32k-256k tokens); GGUFReader then runs on a sample only,
because it needs seconds per file.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from _support import QUICK_HELP
from gguf import GGUFReader, GGUFWriter

from lollma_tui.core.models.gguf_header import read_gguf_header
from lollma_tui.core.models.gguf_known_arrays import KNOWN_STRING_ARRAYS

BIG_VOCAB = (151_936, 151_387)
REAL_VOCABS = [
    (32_000, 0),
    (32_768, 0),
    (49_152, 48_900),
    (128_256, 280_147),
    (151_936, 151_387),
    (262_144, 0),
]


def write_file(path: Path, *, n_layer: int, n_vocab: int, n_merges: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_embd = 64
    writer = GGUFWriter(str(path), "llama")
    writer.add_name(f"bench-{seed}")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(1)
    writer.add_tokenizer_model("gpt2" if n_merges else "llama")
    # Token text of typical length (3-12 bytes) so the walk over the array is realistic.
    writer.add_token_list([f"t{i:x}{'x' * (i % 9)}" for i in range(n_vocab)])
    writer.add_token_types([1] * n_vocab)
    if n_merges:
        writer.add_token_merges([f"t{i:x} t{i + 1:x}" for i in range(n_merges)])
    else:
        writer.add_token_scores([0.0] * n_vocab)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    small = np.zeros((8, n_embd), dtype=np.float16)
    writer.add_tensor("token_embd.weight", small)
    for i in range(n_layer):
        for name in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{i}.{name}.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            writer.add_tensor(
                f"blk.{i}.{name}.weight", small + rng.standard_normal(small.shape).astype(np.float16)
            )
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", small)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def make_files(
    folder: Path, count: int, realistic: bool, big_vocab: tuple[int, int] = BIG_VOCAB
) -> list[Path]:
    """Write the distinct files once and copy them up to `count` (copies read the same)."""
    templates: list[Path] = []
    if realistic:
        for index, (n_vocab, n_merges) in enumerate(REAL_VOCABS):
            path = folder / f"template-{n_vocab}.gguf"
            write_file(path, n_layer=8 + 4 * index, n_vocab=n_vocab, n_merges=n_merges, seed=index)
            templates.append(path)
    else:
        big = folder / "big-vocab.gguf"
        write_file(big, n_layer=28, n_vocab=big_vocab[0], n_merges=big_vocab[1], seed=999)
        templates.append(big)
        for n_layer in (2, 8, 16, 32):
            path = folder / f"template-{n_layer}.gguf"
            write_file(path, n_layer=n_layer, n_vocab=512, n_merges=0, seed=n_layer)
            templates.append(path)
    files = [templates[0]]
    while len(files) < count:
        source = templates[len(files) % len(templates)] if realistic else templates[1 + len(files) % 4]
        copy = folder / f"model-{len(files):03d}.gguf"
        shutil.copyfile(source, copy)
        files.append(copy)
    return files


def time_each(read: Callable[[Path], object], files: Sequence[Path], forget: bool = False) -> list[float]:
    times = []
    for path in files:
        if forget:
            # Each file as the first of its tokenizer: no string array recognised from before.
            KNOWN_STRING_ARRAYS.clear()
        start = time.perf_counter()
        read(path)
        times.append(time.perf_counter() - start)
    return times


def gguf_reader(path: Path) -> object:
    reader = GGUFReader(path)
    return reader.fields, reader.tensors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--realistic", action="store_true", help="real-size vocabularies in every file")
    parser.add_argument("--reader-sample", type=int, default=0, help="GGUFReader on this many files only")
    parser.add_argument("--demo", type=Path, help="also time this GGUF file (e.g. the demo model)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N passes for our reader")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=QUICK_HELP + ": 5 files, one pass, an 8k vocabulary for the big one",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.repeat, args.realistic = 5, 1, False

    with tempfile.TemporaryDirectory(prefix="gguf-bench-") as tmp:
        started = time.perf_counter()
        big_vocab = (8_192, 8_000) if args.quick else BIG_VOCAB
        files = make_files(Path(tmp), args.count, args.realistic, big_vocab)
        if args.demo:
            files.append(args.demo)
        size = sum(p.stat().st_size for p in files)
        print(f"{len(files)} files, {size / 1e6:.1f} MB, generated in {time.perf_counter() - started:.1f} s")

        passes = [time_each(read_gguf_header, files, forget=True) for _ in range(args.repeat)]
        ours = [min(times) for times in zip(*passes, strict=True)]
        # Every tokenizer met once already (other quantizations of the same models).
        seen_passes = [time_each(read_gguf_header, files) for _ in range(args.repeat)]
        seen = [min(times) for times in zip(*seen_passes, strict=True)]
        sample = files
        if args.reader_sample or args.realistic:
            sample = files[: args.reader_sample or len(REAL_VOCABS)]
        theirs = time_each(gguf_reader, sample)

        print(f"\n{'vocabulary':>22} {'files':>5} {'lollma ms':>10} {'GGUFReader ms':>14} {'ratio':>6}")
        kinds: dict[tuple[int, int], list[int]] = {}
        for index, path in enumerate(files):
            header = read_gguf_header(path)
            kinds.setdefault((header.vocab_size or 0, header.merges_count), []).append(index)
        for (n_vocab, n_merges), indexes in sorted(kinds.items()):
            mine = statistics.median(ours[i] for i in indexes) * 1e3
            measured = [theirs[i] for i in indexes if i < len(theirs)]
            label = f"{n_vocab} + {n_merges} merges" if n_merges else f"{n_vocab} tokens"
            if measured:
                other = statistics.median(measured) * 1e3
                print(f"{label:>22} {len(indexes):5d} {mine:10.2f} {other:14.1f} {other / mine:5.0f}x")
            else:
                print(f"{label:>22} {len(indexes):5d} {mine:10.2f} {'-':>14} {'':>6}")

        note = "" if len(sample) == len(files) else f" (measured on the first {len(sample)} files only)"
        print(
            f"\nlollma reader   : {len(files)} headers in {sum(ours):.3f} s (best of {args.repeat} per file)"
        )
        print(f"  tokenizers seen before (byte-identical arrays recognised): {sum(seen):.3f} s")
        print(f"gguf.GGUFReader : {len(sample)} headers in {sum(theirs):.3f} s{note}")
        print(f"ratio           : {sum(theirs) / sum(ours[: len(sample)]):.0f}x on the same files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
