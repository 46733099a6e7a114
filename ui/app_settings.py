"""The web app's settings: how models are served (pipelines.settings.Settings) and the web
server's own (address, public link, password, queue, MCP, Ray, preload), read from the same
flags and TURBO_* variables by pipelines.settings' parse(kind=AppSettings)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from pipelines.errors import InvalidSetting
from pipelines.settings import Option, Settings, on_space, options


@dataclass(frozen=True)
class AppSettings(Settings):
    OPTIONS: ClassVar[dict] = options(
        Option("host", "address to serve on (default: loopback; every interface on a Space)"),
        Option("port", "port to serve on", int),
        Option("share", "public gradio.live link (needs --auth)", bool),
        Option("auth", "USER:PASS asked for by the page"),
        Option("share_without_auth", "allow --share without --auth (anyone with the link can "
                                     "use it)", bool),
        Option("queue_size", "waiting requests before users are told to retry", int),
        *Settings.OPTIONS.values(),
        Option("mcp", "also serve the generation tools to AI agents as an MCP server, at "
                      "/gradio_api/mcp/", bool),
        Option("ray", "generate on Ray Serve model workers: 'local' starts a Ray cluster here, "
                      "'auto' or an ADDRESS (host:port) joins a running one (needs "
                      "requirements-ray.txt)"),
        Option("replicas", "model-worker replicas on Ray (with --ray)", int),
        Option("preload", "load the model the Text-to-Image tab opens on, and run it once, as "
                          "the app starts (not on its first request)", bool),
    )

    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str | None = None  # USER:PASS
    share_without_auth: bool = False
    queue_size: int = 16
    mcp: bool = False  # also serve the generation tools to AI agents (gradio's MCP server)
    ray: str | None = None  # None: generate in this process; local, auto or a cluster's address
    replicas: int = 1  # Ray Serve model-worker replicas (with ray)
    preload: bool = False  # load and run the opening model as the app starts, not on request

    @property
    def auth_pair(self) -> tuple[str, str] | None:
        return tuple(self.auth.split(":", 1)) if self.auth else None

    @classmethod
    def implied(cls, environ: Mapping[str, str], names: set[str]) -> dict:
        if not on_space(environ):
            return {}
        # A Hugging Face Space reaches the app through its own proxy (every interface), and
        # wakes for a visitor: the opening model loads while the page comes up.
        return {name: value for name, value in (("host", "0.0.0.0"), ("preload", True))
                if name in names}

    def check(self) -> None:
        super().check()
        if self.queue_size < 1:
            raise InvalidSetting("--queue-size (TURBO_QUEUE_SIZE) must be at least 1.")
        if not 0 < self.port < 65536:
            raise InvalidSetting(f"--port (TURBO_PORT) must be from 1 to 65535, not {self.port}.")
        if self.auth is not None and ":" not in self.auth:
            raise InvalidSetting("--auth (TURBO_AUTH) takes USER:PASS.")
        if self.replicas < 1:
            raise InvalidSetting(f"--replicas (TURBO_REPLICAS) must be at least 1, not "
                                 f"{self.replicas}.")
        if self.replicas > 1 and self.ray is None:
            raise InvalidSetting("--replicas runs model workers on Ray: give --ray local (or "
                                 "auto, or a cluster's address) too.")
        if self.share and not self.auth and not self.share_without_auth:
            raise InvalidSetting("--share makes the app public: give --auth USER:PASS (or "
                                 "TURBO_AUTH), or --share-without-auth if you really mean it.")
