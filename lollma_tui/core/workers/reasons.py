"""What a worker tells the user about an exception it caught."""

from __future__ import annotations


def error_reason(error: Exception) -> str:
    """The message, with a chat template's error named as one (llama-cpp-python reads a GGUF's
    template with Jinja when it loads the model: one Jinja cannot read fails the load)."""
    import jinja2

    if isinstance(error, jinja2.TemplateError):
        return f"the model's chat template failed: {type(error).__name__}: {error}"
    if isinstance(error, ValueError | RuntimeError | OSError):
        return str(error)
    return f"{type(error).__name__}: {error}"
