"""Hardware sampling: psutil, NVML, DRM sysfs and `macmon pipe`, as immutable snapshots.

No Textual and no rich here. Typical use::

    sampler = HardwareSampler(on_snapshot=lambda s: app.call_from_thread(panel.show, s))
    sampler.set_process_ids_provider(lambda: [worker_pid])
    sampler.start()
    ...
    sampler.stop()

"Not available" is ``None`` in every snapshot field (shown as "—").
"""

import lazy_loader

# The names, and the submodule each comes from, are listed once: in __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
