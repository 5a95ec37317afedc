"""Reading a lesson or packetdrill script from disk, safely.

Only a regular file of reasonable size is read: a FIFO would block the command forever and /dev/zero would
fill memory, and neither can be a script. The errors are OSErrors with a sentence as strerror, so callers
report them as they report any unreadable file.
"""

from __future__ import annotations

import errno
import os
import stat

MAX_SCRIPT_BYTES = 16 << 20  # far beyond any real script; the catalog's largest lesson is a few KB


def read_script(path: str | os.PathLike[str]) -> bytes:
    name = os.fspath(path)
    mode = os.stat(name).st_mode  # does not open: a FIFO cannot block here
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a script", name)
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket cannot be a script)", name)
    with open(name, "rb") as fh:
        data = fh.read(MAX_SCRIPT_BYTES + 1)
    if len(data) > MAX_SCRIPT_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SCRIPT_BYTES >> 20} MiB: not a script", name)
    return data
