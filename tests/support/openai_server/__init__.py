"""An OpenAI-compatible protocol test server imitating llama-server, vLLM and LM Studio."""

from .server import OpenAITestServer, Received, Script
from .shapes import Flavour, ServedSpec

__all__ = ["Flavour", "OpenAITestServer", "Received", "Script", "ServedSpec"]
