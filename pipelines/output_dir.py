"""The folders reports and sites are written into (``medallion docs --out``, ``medallion dq report --out``).

A build writes only into a folder it creates, or one an earlier build marked as its own (a marker file it
writes first). A folder that holds anything else is refused with :class:`OutputFolderError` and left exactly
as it is: ``--out ~/Documents`` must never delete a user's files. A marked folder is the product's: an earlier
build in it is replaced whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.errors import OutputFolderError


def prepare_output_dir(out: Path, marker: str, what: str) -> None:
    """Make ``out`` an empty folder marked with ``marker`` (a file name) for a build of ``what``."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputFolderError(f"{out} exists and is not a folder: choose another --out")
        entries = list(out.iterdir())
        if entries and not (out / marker).is_file():
            raise OutputFolderError(
                f"{out} is not empty and was not written by {what} (it has no {marker}): nothing was deleted; "
                "choose another --out, or an empty or new folder"
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).write_text(f"written by {what}: this folder is replaced on every build\n")
