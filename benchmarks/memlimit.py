"""A memory limit for a benchmark's child process: a Linux memory cgroup of its own, so that
"fits in N GB" is shown by running in N GB, not read off a peak RSS that also counts
memory-mapped weights the kernel would drop under pressure.

Written by hand: neither psutil nor subprocess sets one. cgroup v1 (the memory controller's
hierarchy) and v2 (the unified one, where the parent delegates the memory controller)."""

import os
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


class Unavailable(RuntimeError):
    """This machine (or container) gives no memory cgroup this process may create."""


class MemoryLimit:
    """`with MemoryLimit(bytes) as limit:` start the child with preexec_fn=limit.enter; after it
    ends, limit.peak() and limit.oom_killed() say what it took and whether the limit killed it."""

    def __init__(self, limit_bytes: int, empty_page_cache: bool = True):
        self.limit, self.empty_page_cache = limit_bytes, empty_page_cache
        self.v1 = (ROOT / "memory").is_dir()
        self.path: Path | None = None
        self.page_cache_emptied = False

    def __enter__(self) -> "MemoryLimit":
        parent = _own_cgroup(self.v1)
        self.path = parent / f"turbo-bench-{os.getpid()}"
        try:
            self.path.mkdir(exist_ok=True)
            if self.v1:
                (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
                swap = self.path / "memory.memsw.limit_in_bytes"  # no swapping out of the limit
                if swap.exists():
                    swap.write_text(str(self.limit))
            else:
                (self.path / "memory.max").write_text(str(self.limit))
                (self.path / "memory.swap.max").write_text("0")
        except OSError as e:
            self.__exit__()
            raise Unavailable(f"cannot set a memory limit in {parent}: {e}") from e
        self.page_cache_emptied = self.empty_page_cache and _empty_page_cache()
        return self

    def enter(self) -> None:
        """Move the calling process (the child, before it runs anything) into the cgroup."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int:
        """The most memory the cgroup was charged at once (RSS and page cache), in bytes."""
        name = "memory.max_usage_in_bytes" if self.v1 else "memory.peak"
        return int((self.path / name).read_text().split()[0])

    def oom_killed(self) -> bool:
        name = "memory.oom_control" if self.v1 else "memory.events"
        fields = dict(line.split() for line in (self.path / name).read_text().splitlines())
        return int(fields.get("oom_kill", 0)) > 0

    def __exit__(self, *exc) -> None:
        try:
            self.path.rmdir()
        except OSError:  # never made, or a process still in it: leave it to the system
            pass


def _empty_page_cache() -> bool:
    """Drop the clean page cache (root only), so that the files the child maps (IR weights, the
    compile cache) are charged to its cgroup: a cached page is charged to the cgroup that read
    it first, and pages read before the child started stay charged elsewhere."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1")
        return True
    except OSError:
        return False


def _own_cgroup(v1: bool) -> Path:
    """This process's cgroup folder (of the memory controller on v1)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (v1 and "memory" in controllers.split(",")) or (not v1 and controllers == ""):
            return (ROOT / "memory" if v1 else ROOT) / path.lstrip("/")
    raise Unavailable("no memory cgroup in /proc/self/cgroup")
