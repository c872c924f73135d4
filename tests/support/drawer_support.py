"""Helpers the drawer tests import by name (conftest modules collide on sys.path)."""

from __future__ import annotations

from collections.abc import Callable

from lollma_tui.core.models.catalog import Catalog
from lollma_tui.core.models.fit import FitParams, FitVerdict, check_fit
from lollma_tui.core.settings import LoadSettings

FitCheck = Callable[[LoadSettings], FitVerdict | None]


def make_fit_checker(catalog: Catalog, free_vram: int | None, free_ram: int | None) -> FitCheck:
    """The app's checker in miniature: the real estimator over the catalog's headers."""

    def check(settings: LoadSettings) -> FitVerdict | None:
        found = catalog.find(settings.model)
        if found is None or found[1].header is None:
            return None
        return check_fit(found[1].header, FitParams.from_settings(settings), free_vram, free_ram)

    return check
