"""Hot-swap core: one active backend, its settings, and model swaps as transactions.

No Textual here. The app builds a `ModelSession` with a backend factory, calls `swap()` with
the settings the drawer or a slash command produced, and shows the `SwapProgress` and the
`SwapResult` it gets back.
"""

import lazy_loader

# The names, and the submodule each comes from, are listed once: in __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
