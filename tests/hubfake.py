"""A local stand-in for the Hugging Face Hub: the real huggingface_hub cache code reads a real
cache layout; only what would cross the network (downloads, uploads) is replaced."""

import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub

COMMIT = "0123456789abcdef0123456789abcdef01234567"
real_snapshot_download = huggingface_hub.snapshot_download
# Stored in Git LFS by the Hub's default .gitattributes (among others); the rest is plain git.
LFS_SUFFIXES = {".bin", ".onnx", ".pt", ".safetensors", ".msgpack", ".h5"}


def put_in_cache(cache: Path, repo: str, folder: Path) -> Path:
    """Lay `folder` out as huggingface_hub's cache does: refs/main names the commit, each file is
    stored once as blobs/<hash> (sha256 for LFS files, git's blob sha1 for the others, as the
    Hub's etags), and snapshots/<commit>/<path> is a relative symlink to its blob. Returns the
    snapshot folder."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    (root / "blobs").mkdir(exist_ok=True)
    snapshot = root / "snapshots" / COMMIT
    for file in sorted(f for f in Path(folder).rglob("*") if f.is_file()):
        path = file.relative_to(folder)
        data = file.read_bytes()
        blob = root / "blobs" / _blob_name(path, data)
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)  # a second put of the repo replaces the file
        # From snapshots/<commit>/<path>'s folder up to models--owner--name/.
        link.symlink_to(Path(*[".."] * (len(path.parts) + 1), "blobs", blob.name))
    return snapshot


def _blob_name(path: Path, data: bytes) -> str:
    if path.suffix in LFS_SUFFIXES:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """Repos are folders under `root`. snapshot_download looks in the cache with the real
    client, and "downloads" by copying the repo's folder into the cache; HfApi's upload calls
    write into `root`. Every call is recorded."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple] = []
        self.fail_with: Exception | None = None

    def model_info(self, repo_id, *, files_metadata=False, timeout=None, **kwargs):
        """What huggingface_hub.model_info gives that the app reads: each file's size."""
        self.calls.append(("model_info", repo_id, files_metadata))
        if self.fail_with is not None:
            raise self.fail_with
        if not (self.root / repo_id).is_dir():
            raise LookupError(f"404: no repo {repo_id} on this fake Hub")
        files = [f for f in (self.root / repo_id).rglob("*") if f.is_file()]
        return SimpleNamespace(siblings=[SimpleNamespace(
            rfilename=str(f.relative_to(self.root / repo_id)),
            size=f.stat().st_size if files_metadata else None) for f in files])

    def snapshot_download(self, repo_id, *, local_files_only=False, cache_dir=None, **kwargs):
        self.calls.append(("snapshot_download", repo_id, local_files_only))
        if local_files_only:
            return real_snapshot_download(repo_id, local_files_only=True, cache_dir=cache_dir)
        if self.fail_with is not None:
            raise self.fail_with
        files = [f for f in (self.root / repo_id).rglob("*") if f.is_file()]
        bar = kwargs.get("tqdm_class") and kwargs["tqdm_class"](total=len(files))
        snapshot = put_in_cache(Path(cache_dir), repo_id, self.root / repo_id)
        if bar:  # as huggingface_hub does: one tick per file fetched
            for _ in files:
                bar.update(1)
            bar.close()
        return str(snapshot)

    # HfApi
    def create_repo(self, repo_id, *, private=False, exist_ok=False, **kwargs):
        self.calls.append(("create_repo", repo_id, private))
        (self.root / repo_id).mkdir(parents=True, exist_ok=exist_ok)
        return f"https://hub.example/{repo_id}"

    def upload_folder(self, *, folder_path, repo_id, commit_message=None, **kwargs):
        self.calls.append(("upload_folder", repo_id, Path(folder_path)))
        shutil.copytree(folder_path, self.root / repo_id, dirs_exist_ok=True)

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, commit_message=None,
                    **kwargs):
        self.calls.append(("upload_file", repo_id, path_in_repo))
        (self.root / repo_id / path_in_repo).write_bytes(path_or_fileobj)
