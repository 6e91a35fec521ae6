"""``fedimeter serve`` keeps glibc to two malloc arenas (docs/reliability.md, Load)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's malloc arenas",
)

#: A process that (maybe) limits its arenas, then lets 8 threads allocate at once and counts
#: the arenas glibc made (``malloc_info`` lists one <heap> per arena).
_PROBE = textwrap.dedent(
    """
    import ctypes, sys, threading
    from fedimeter.cli.serve import limit_malloc_arenas
    took = limit_malloc_arenas() if sys.argv[1] == "limit" else False
    start = threading.Barrier(8)
    def work():
        start.wait()
        for _ in range(200):
            kept = [bytearray(256) for _ in range(2000)]
            del kept
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    out = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(took, open(sys.argv[2]).read().count("<heap nr="))
    """
)


def _arenas(mode: str, tmp_path: Path, **env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(tmp_path / f"{mode}.xml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env,
    )
    took, count = done.stdout.split()
    return took, int(count)


def test_serve_keeps_glibc_to_two_arenas(tmp_path: Path) -> None:
    """Limited: at most 2 arenas for 8 threads allocating at once; unlimited: more."""
    took, limited = _arenas("limit", tmp_path)
    assert took == "True"
    assert limited <= 2
    took, unlimited = _arenas("none", tmp_path)
    assert took == "False"
    assert unlimited > 2


def test_an_administrators_setting_stands(tmp_path: Path) -> None:
    """MALLOC_ARENA_MAX in the environment: fedimeter leaves it to glibc."""
    took, count = _arenas("limit", tmp_path, MALLOC_ARENA_MAX="3")
    assert took == "False"
    assert count <= 3
