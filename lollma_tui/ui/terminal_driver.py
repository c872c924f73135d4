"""Textual's Linux and macOS terminal driver, made safe to stop and continue from outside.

Textual restarts application mode on every SIGCONT, meant for the return from its own Ctrl+Z
suspend (SIGTSTP), which first stopped application mode. A process stopped from outside with
SIGSTOP (``kill -STOP``, a debugger, a benchmark pausing the app) cannot catch that signal, so
application mode is still running when SIGCONT comes: the restart adds a second input thread
reading the same terminal. Typed keys are then split between the two threads and reach the app
out of order (an Enter sent half a message and left the rest in the prompt), and quitting can
hang on a thread still waiting for input. The SIGCONT handler here restarts only what was
stopped.
"""

from __future__ import annotations

from textual.drivers.linux_driver import LinuxDriver


class ContinuableDriver(LinuxDriver):
    def _sigcont_application(self, *_: object) -> None:
        reader = self._key_thread
        if reader is not None and reader.is_alive():
            # Not suspended by Textual: the terminal was never given back, so nothing needs
            # restarting.
            return
        super()._sigcont_application()
