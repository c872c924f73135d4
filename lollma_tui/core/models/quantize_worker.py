"""The quantize worker: one `llama_model_quantize` call in a process of its own.

Run as ``python -m lollma_tui.core.models.quantize_worker SRC DST --ftype N`` with stderr on a
log file. The call blocks, cannot be interrupted and reports progress only to the log, so the
parent watches the output grow and the log's ``[ i/ n]`` tensor lines, and kills this process to
cancel. The result is one JSON line on stdout; everything llama.cpp prints goes to the log.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="lollma-tui quantize worker (started by the app)")
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--ftype", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--allow-requantize", action="store_true")
    args = parser.parse_args(argv)

    result_out = os.fdopen(os.dup(1), "w", buffering=1)
    # fd 2 is the log the parent opened; llama.cpp's per-tensor lines go there, and so does fd 1.
    os.dup2(2, 1)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    # Always set: the default ftype differs between llama.cpp versions.
    params.ftype = args.ftype
    params.nthread = args.threads
    params.allow_requantize = args.allow_requantize
    started = time.perf_counter()
    rc = int(
        llama_cpp.llama_model_quantize(
            os.fsencode(args.source), os.fsencode(args.output), ctypes.byref(params)
        )
    )
    sys.stdout.flush()
    sys.stderr.flush()
    result_out.write(json.dumps({"rc": rc, "seconds": time.perf_counter() - started}) + "\n")
    result_out.flush()
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
