"""Where a compiled model part is kept between starts: its folder in the store, and saving it
there whole or not at all.

OpenVINO's own compiled-model cache (CACHE_DIR) writes each blob while compiling, on the first
start's path to the first image, which makes the full-size UNet's compile a third slower
(docs/speed.md). So parts compile without it, and are exported
(openvino.genai's export_model) once the model is idle after an image (CompiledParts._save),
off any request's path, then imported (blob_path) at the next start. By hand: OpenVINO keys
its own cache, here the key is ours."""

import hashlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import openvino as ov
import openvino_genai as genai
import psutil

log = logging.getLogger(__name__)

PARTIAL = ".partial-"  # a folder being written: <folder>.partial-<pid>
EXPORT_TIMEOUT = 120  # seconds; the full-size FP16 UNet's 5 GB blob, on a slow disk


def _digest(*items) -> str:
    return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


def folder(store: Path, paths: list[Path], device: str, config: dict, shape=None) -> Path:
    """The store's folder for one part compiled from `paths` (its IR folders) with this device,
    config and static shape (None: dynamic). Named <part>-<what is asked>-<what it is made of>:
    the second hash covers the IR files (path, size, time) and the OpenVINO and genai
    versions, so a re-export or an upgrade gets a new folder and never an old blob."""
    asked = _digest([str(Path(p).resolve()) for p in paths], device, sorted(config.items()),
                    shape)
    files = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns)
             for p in paths for f in sorted(Path(p).glob("openvino_model.*"))]
    made_of = _digest(files, ov.get_version(), genai.get_version())
    return Path(store) / f"{Path(paths[0]).name}-{asked}-{made_of}"


class Interrupted(RuntimeError):
    """The save was given up (a generation came): nothing is written; save again later."""


def save(part, part_folder: Path) -> None:
    """Export a compiled openvino.genai part (UNet2DConditionModel, CLIPTextModel,
    AutoencoderKL...) into its folder whole or not at all (Saving)."""
    Saving(part, part_folder).wait()


class Saving:
    """A part being saved: into a partial folder first, renamed when complete, so a start
    never imports half a blob; then what it replaces is removed (remove_stale).

    The export runs in a forked child where the system forks safely (Linux): openvino.genai's
    export_model holds Python's GIL for the whole export, so the app would answer no page or
    API call meanwhile; the child writes the blob from its copy-on-write view of the part.
    Making a Saving forks at once, so the caller holds the run lock only for that (the child's
    copy is of a part no run is using); wait() needs no lock, and generations go on beside it.
    A child still at work after EXPORT_TIMEOUT seconds is stopped, and the save fails."""

    def __init__(self, part, part_folder: Path):
        self.part_folder = part_folder
        self.partial = part_folder.with_name(f"{part_folder.name}{PARTIAL}{os.getpid()}")
        shutil.rmtree(self.partial, ignore_errors=True)
        self.pid = self.read = None
        if sys.platform != "linux":
            self._guarded(part.export_model, self.partial)
            return
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # out of memory or processes: the save fails, the app runs on
            os.close(read)
            os.close(write)
            raise
        if pid == 0:  # the child: export, write why it failed if it did, exit without clean-up
            os.close(read)
            try:
                part.export_model(self.partial)
                os._exit(0)
            except BaseException as e:  # noqa: BLE001 -- told to the parent, which raises it
                os.write(write, f"{type(e).__name__}: {e}".encode()[:4096])
                os._exit(1)
        os.close(write)
        self.pid, self.read = pid, read

    def wait(self, stop=lambda: False) -> None:
        """Until the part is saved; `stop()` turning true gives the save up (Interrupted)."""
        if self.pid is not None:
            self._guarded(self._wait_child, stop)
        try:
            self.partial.rename(self.part_folder)
        except OSError:  # another process saved the same part first
            shutil.rmtree(self.partial, ignore_errors=True)
        remove_stale(self.part_folder)

    def _wait_child(self, stop) -> None:
        deadline = time.monotonic() + EXPORT_TIMEOUT
        while ((done := os.waitpid(self.pid, os.WNOHANG))[0] == 0
               and time.monotonic() < deadline and not stop()):
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        with os.fdopen(self.read, "rb") as pipe:
            why = pipe.read().decode(errors="replace")
        if done[0] == 0 and time.monotonic() < deadline:
            raise Interrupted("given up for a generation")
        if done[0] == 0:
            raise RuntimeError(f"the export took more than {EXPORT_TIMEOUT} s and was stopped")
        if (code := os.waitstatus_to_exitcode(done[1])) != 0:  # -N: ended by signal N
            raise RuntimeError(why or f"the export process ended with code {code}")

    def _guarded(self, work, *args) -> None:
        try:
            work(*args)
        except BaseException:  # a full disk: leave no partial blob of gigabytes behind
            shutil.rmtree(self.partial, ignore_errors=True)
            raise


SAVE_WHEN_IDLE = 2.0  # seconds without a generation before a compiled part is saved


class Saver:
    """The parts a model compiled and has not saved yet (`unsaved`: key -> store folder), saved
    one by one once no generation has run for SAVE_WHEN_IDLE seconds, on a thread of its own.
    `compiled`: the model's parts by key (CompiledParts.compiled), read when each is saved.

    The run lock (every generation holds it) is held only while a part is picked and its
    saving child forked; the child then writes beside any generation. A generation beside an
    export slows both, so one that starts meanwhile stops the save, and the part is saved at
    the next idle time. By hand: OpenVINO saves compiled models, not when."""

    def __init__(self, compiled: dict):
        self.compiled = compiled
        self.unsaved: dict[str, Path] = {}
        self._thread: threading.Thread | None = None
        self._last_run = 0.0  # time.monotonic() at the end of the last generation
        self._unloaded = threading.Event()  # wakes the thread to end (forget)

    def after_run(self, run_lock: threading.Lock) -> None:
        """After each generation, under `run_lock`: start saving what is unsaved. Not a daemon
        thread: a process that ends soon after its image (the CLI) still saves."""
        self._last_run = time.monotonic()
        if self.unsaved and self._thread is None:
            self._thread = threading.Thread(target=self._save, args=(run_lock,), daemon=False,
                                            name="turbo-save-compiled")
            self._thread.start()

    def forget(self) -> None:
        """Save nothing more: the model is being unloaded, and a saver still waiting would keep
        its compiled parts in memory. Under the run lock."""
        self.unsaved.clear()
        self._unloaded.set()

    def wait(self) -> None:
        """Until the saving under way (if any) is done."""
        thread = self._thread
        if thread is not None:
            thread.join()

    def _save(self, run_lock: threading.Lock) -> None:
        while True:
            self._unloaded.wait(max(0.0, self._last_run + SAVE_WHEN_IDLE - time.monotonic()))
            with run_lock:
                if not self.unsaved:  # all saved, or the model unloaded
                    self._thread = None  # the next compile's after_run starts another
                    return
                if time.monotonic() - self._last_run < SAVE_WHEN_IDLE:
                    continue  # a generation ran while this waited for the lock
                key, part_folder = next(iter(self.unsaved.items()))
                part = self.compiled.get(key)  # None: freed since (a failed recompile)
                saving = self._start(key, part, part_folder)
            if saving is not None:
                self._finish(key, saving, part_folder, run_lock)

    def _start(self, key: str, part, part_folder: Path) -> "Saving | None":
        """Under the run lock: fork the child that saves the part (None where it is gone or
        the fork failed)."""
        if part is None:
            self.unsaved.pop(key, None)
            return None
        try:
            return Saving(part, part_folder)
        except (OSError, RuntimeError) as e:
            self.unsaved.pop(key, None)
            log.warning("Could not save the compiled %s in %s: %s", key, part_folder.parent, e)
            return None

    def _finish(self, key: str, saving: "Saving", part_folder: Path,
                run_lock: threading.Lock) -> None:
        """Without the run lock: wait for the child, giving the save up when a generation
        starts (run_lock taken); the part stays unsaved then, for the next idle time."""
        try:
            saving.wait(stop=run_lock.locked)
        except Interrupted:
            self._last_run = time.monotonic()  # a generation is running: wait for it to end
            return
        except (OSError, RuntimeError) as e:  # a full disk: compiled again next start
            log.warning("Could not save the compiled %s in %s: %s", key, part_folder.parent, e)
        if self.unsaved.get(key) == part_folder:  # not recompiled at another shape meanwhile
            del self.unsaved[key]


def remove_stale(part_folder: Path) -> None:
    """The same part's other folders (an older export of its IR, other versions), partial
    folders of processes that are gone, and the blobs OpenVINO's own cache wrote in the store
    before it was one (<number>.blob): each holds up to gigabytes."""
    for blob in part_folder.parent.glob("*.blob"):
        blob.unlink(missing_ok=True)
    asked = part_folder.name.rsplit("-", 1)[0]
    for other in part_folder.parent.glob(f"{asked}-*"):
        name, partial, pid = other.name.partition(PARTIAL)
        if name == part_folder.name and not partial:
            continue
        if partial and pid.isdigit() and psutil.pid_exists(int(pid)):
            continue  # being written now
        shutil.rmtree(other, ignore_errors=True)


def load(component, paths: list[Path], device: str, config: dict, part_folder: Path):
    """The part imported from its saved folder; None where it is not saved (a folder appears
    only when its export is complete) or its blob cannot be imported (damaged, or written by an
    OpenVINO this one cannot read): the folder is removed then, so the part is compiled and
    saved afresh."""
    if not part_folder.is_dir():
        return None
    try:
        return component(*paths, device, blob_path=str(part_folder), **config)
    except RuntimeError:
        shutil.rmtree(part_folder, ignore_errors=True)
        return None


def saved(store: Path | None) -> dict[str, int]:
    """The parts saved in a store, by folder name, with their modification times (for tests
    and the benchmark: a start that compiles anything adds a folder)."""
    if store is None or not Path(store).is_dir():
        return {}
    return {path.name: path.stat().st_mtime_ns for path in Path(store).iterdir()
            if path.is_dir() and PARTIAL not in path.name}
