"""Models on disk and on Ollama: GGUF headers, the catalog of quantization variants, and the
memory fit estimator. Import the submodules directly; this package imports nothing on purpose
(the header reader sits on the app's start-up path)."""
