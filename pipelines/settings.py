"""One frozen Settings per process, built once from flags and TURBO_* variables (a flag wins), and
handed to the registry, the UI and the CLIs. Nothing else reads TURBO_* from the environment.

Every setting has a flag and a variable (OPTIONS); a command line takes the flags it needs with
add_flags() and builds its Settings with parse(), which stops with a usage message on a value
that cannot work."""

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Mapping

from pipelines.errors import InvalidSetting

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("auto", "bf16", "f16", "f32")
YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")


def yes_no(value: str | None, default: bool = False, name: str = "value") -> bool:
    """The one parser of yes/no values (TURBO_* switches, HF_HUB_OFFLINE); unset or empty is
    the default, anything unknown is refused rather than guessed."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in YES + NO:
        return text in YES
    raise InvalidSetting(f"{name} {value!r} is neither yes ({', '.join(YES)}) nor no "
                         f"({', '.join(NO)}).")


def hub_offline(environ: Mapping[str, str] = os.environ) -> bool:
    """HF_HUB_OFFLINE, read when asked (huggingface_hub reads it once, at import): the same
    answer for serving and for export."""
    return yes_no(environ.get("HF_HUB_OFFLINE"), name="HF_HUB_OFFLINE")


def on_space(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this runs as a Hugging Face Space (which sets SPACE_ID): its visitors cannot
    run commands, so messages there give none."""
    return bool(environ.get("SPACE_ID"))


@dataclass(frozen=True)
class Settings:
    models_dir: Path = ROOT / "models"
    device: str = "CPU"  # OpenVINO device: CPU, GPU, NPU or AUTO
    precision: str = "auto"  # bf16 where the CPU has it, else f32
    ram_budget_gb: float | None = None  # None: 3/4 of this machine's RAM
    ov_cache: bool = True  # the compiled parts saved in <models dir>/.ov-cache
    static_shapes: bool = False  # compile for the request's size, recompile when it changes
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    auth: str | None = None  # USER:PASS
    share_without_auth: bool = False
    queue_size: int = 16
    verbose: bool = False  # show library warnings on the console instead of only in the log
    mcp: bool = False  # also serve the generation tools to AI agents (gradio's MCP server)
    ray: str | None = None  # None: generate in this process; local, auto or a cluster's address
    replicas: int = 1  # Ray Serve model-worker replicas (with ray)
    preload: bool = False  # load and run the opening model as the app starts, not on request

    @property
    def ram_budget(self) -> int | None:
        """Bytes, or None for the registry's default."""
        return None if self.ram_budget_gb is None else int(self.ram_budget_gb * 2**30)

    @property
    def auth_pair(self) -> tuple[str, str] | None:
        return tuple(self.auth.split(":", 1)) if self.auth else None


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return "TURBO_" + self.name.upper()


OPTIONS = {option.name: option for option in (
    Option("host", "address to serve on (default: loopback; every interface on a Space)"),
    Option("port", "port to serve on", int),
    Option("share", "public gradio.live link (needs --auth)", bool),
    Option("auth", "USER:PASS asked for by the page"),
    Option("share_without_auth", "allow --share without --auth (anyone with the link can "
                                 "use it)", bool),
    Option("device", "OpenVINO device: CPU, GPU, NPU or AUTO"),
    Option("models_dir", "exported models", Path),
    Option("queue_size", "waiting requests before users are told to retry", int),
    Option("ram_budget_gb", "GB of RAM for loaded models (default: 3/4 of this machine's)",
           float),
    Option("precision", "OpenVINO inference precision (auto: bf16 where the CPU has it, "
                        "else f32)", choices=PRECISIONS),
    Option("ov_cache", "the compiled parts saved in <models dir>/.ov-cache", bool),
    Option("static_shapes", "compile for the request's size; recompile when it changes", bool),
    Option("verbose", "show library warnings on the console (else only in the log file)", bool),
    Option("mcp", "also serve the generation tools to AI agents as an MCP server, at "
                  "/gradio_api/mcp/", bool),
    Option("ray", "generate on Ray Serve model workers: 'local' starts a Ray cluster here, "
                  "'auto' or an ADDRESS (host:port) joins a running one (needs "
                  "requirements-ray.txt)"),
    Option("replicas", "model-worker replicas on Ray (with --ray)", int),
    Option("preload", "load the model the Text-to-Image tab opens on, and run it once, as "
                      "the app starts (not on its first request)", bool),
)}
SERVING = ("models_dir", "device", "precision", "ram_budget_gb", "ov_cache", "static_shapes",
           "verbose")


def add_flags(parser: argparse.ArgumentParser, names=tuple(OPTIONS)) -> None:
    """Add these settings' flags. Their defaults stay None: parse() tells a flag given from one
    left out, so that the TURBO_* variable (then the built-in default) applies."""
    defaults = Settings()
    for name in names:
        option = OPTIONS[name]
        help_text = f"{option.help} ({option.variable}; default {getattr(defaults, name)})"
        if option.type is bool:
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(option.flag, help=help_text, default=None,
                                choices=option.choices, metavar=name.upper())
    if "verbose" in names:
        parser.add_argument("-v", dest="verbose", action="store_const", const=True,
                            help="same as --verbose")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None,
          environ: Mapping[str, str] = os.environ) -> tuple[argparse.Namespace, Settings]:
    """Parse the command line; Settings from its flags, else TURBO_* variables, else the
    defaults. A value that cannot work stops here with the parser's usage message (exit 2)."""
    args = parser.parse_args(argv)
    try:
        settings = from_flags(vars(args), environ)
    except InvalidSetting as e:
        parser.error(str(e))
    return args, settings


def from_flags(flags: Mapping[str, object], environ: Mapping[str, str] = os.environ,
               names=None) -> Settings:
    """Settings from flag values (None: not given) and the environment. Only the settings a
    command takes (`names`; default: those in `flags`) are read, the others keep their
    defaults, so that a variable meant for another command never stops this one. Raises
    InvalidSetting."""
    names = set(flags if names is None else names)
    values = {}
    for field in fields(Settings):
        if field.name not in names:
            continue
        option = OPTIONS[field.name]
        given = flags.get(field.name)
        raw = given if given is not None else environ.get(option.variable)
        if raw is None or raw == "":
            continue
        source = option.flag if given is not None else f"{option.flag} ({option.variable})"
        values[field.name] = _convert(option, raw, source)
    if "host" in names and "host" not in values and environ.get("SPACE_ID"):
        # A Hugging Face Space reaches the app through its own proxy: every interface.
        values["host"] = "0.0.0.0"
    if "preload" in names and "preload" not in values and environ.get("SPACE_ID"):
        # A Space wakes for a visitor: load the opening model while the page comes up.
        values["preload"] = True
    settings = Settings(**values)
    check(settings)
    return settings


def _convert(option: Option, raw, source: str):
    if option.type is bool:
        return raw if isinstance(raw, bool) else yes_no(str(raw), name=source)
    try:
        value = option.type(raw)
    except (TypeError, ValueError):  # worded as argparse words its own
        raise InvalidSetting(f"argument {source}: invalid {option.type.__name__} value: "
                             f"{raw!r}") from None
    if option.name in ("precision", "device"):
        value = value.strip().lower() if option.name == "precision" else value.strip().upper()
    if option.choices and value not in option.choices:
        raise InvalidSetting(f"{source} {raw!r}: choose one of {', '.join(option.choices)}.")
    return value


def check(settings: Settings) -> None:
    """Refuse settings that cannot work together, each with what to do instead."""
    if settings.queue_size < 1:
        raise InvalidSetting("--queue-size (TURBO_QUEUE_SIZE) must be at least 1.")
    if settings.ram_budget_gb is not None and not settings.ram_budget_gb > 0:
        raise InvalidSetting(f"--ram-budget-gb (TURBO_RAM_BUDGET_GB) must be more than 0, not "
                             f"{settings.ram_budget_gb:g}; leave it out for 3/4 of this "
                             f"machine's RAM.")
    if not 0 < settings.port < 65536:
        raise InvalidSetting(f"--port (TURBO_PORT) must be from 1 to 65535, not {settings.port}.")
    if settings.auth is not None and ":" not in settings.auth:
        raise InvalidSetting("--auth (TURBO_AUTH) takes USER:PASS.")
    if settings.replicas < 1:
        raise InvalidSetting(f"--replicas (TURBO_REPLICAS) must be at least 1, not "
                             f"{settings.replicas}.")
    if settings.replicas > 1 and settings.ray is None:
        raise InvalidSetting("--replicas runs model workers on Ray: give --ray local (or auto, "
                             "or a cluster's address) too.")
    if settings.share and not settings.auth and not settings.share_without_auth:
        raise InvalidSetting("--share makes the app public: give --auth USER:PASS (or "
                             "TURBO_AUTH), or --share-without-auth if you really mean it.")
