"""Fixtures for the app tests; `tmux` drives the installed command in a private tmux server."""

from tmux_support import tmux

__all__ = ["tmux"]
