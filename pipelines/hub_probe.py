"""An online first start: whether the Hugging Face Hub answers for the catalogue's public
pre-exported repos, and how much each would download, asked once as the app starts (a few
small metadata requests with a short timeout), so that a start with nothing exported offers
the real models instead of the stand-ins' noise."""

from dataclasses import dataclass, field

from pipelines import settings

TIMEOUT = 5.0  # seconds per request: a start never waits long on an unreachable Hub


@dataclass(frozen=True)
class Probe:
    sizes: dict[str, int] = field(default_factory=dict)  # repo -> bytes it downloads
    problem: str | None = None  # why nothing is offered (one line), or None


def probe(repos: list[str], timeout: float = TIMEOUT) -> Probe:
    """The download size of each repo the Hub answers for. The first failure ends the probe
    (an unreachable Hub would time out on every repo): its reason is the problem."""
    if settings.hub_offline():
        return Probe(problem="HF_HUB_OFFLINE is set")
    import huggingface_hub

    sizes = {}
    for repo in repos:
        try:
            info = huggingface_hub.model_info(repo, files_metadata=True, timeout=timeout)
        except Exception as e:  # noqa: BLE001 -- network, DNS, auth: all mean "not now"
            first = (str(e).strip().splitlines() or [""])[0][:200]
            return Probe(sizes, f"the Hugging Face Hub did not answer for {repo} "
                                f"({type(e).__name__}{': ' + first if first else ''})")
        sizes[repo] = sum(sibling.size or 0 for sibling in info.siblings or ())
    return Probe(sizes)


def gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB"  # as the Hub shows sizes (1 GB = 10⁹ bytes)
